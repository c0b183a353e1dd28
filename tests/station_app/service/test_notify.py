"""sd_notify over a real Unix datagram socket, as systemd binds it."""

from __future__ import annotations

import os
import uuid

import pytest

from station_app.service.notify import SystemdNotifier, watchdog_interval_usec
from tests.station_app.service.notify_socket import NotifyListener


@pytest.fixture
def listener(tmp_path):
    listening = NotifyListener(tmp_path / "notify.sock")
    yield listening
    listening.close()


def test_ready_status_watchdog_stopping_arrive_as_datagrams(listener):
    notifier = SystemdNotifier.from_environment(listener.environment())
    assert notifier.enabled
    assert notifier.status("opening camera")
    assert notifier.ready("ready: camera, lights, models up")
    assert notifier.watchdog()
    assert notifier.stopping("stopping: SIGTERM")
    notifier.close()
    listener.wait_for(lambda m: "STOPPING" in m)
    messages = [fields for _, fields in listener.snapshot()]
    assert messages == [
        {"STATUS": "opening camera"},
        {"READY": "1", "STATUS": "ready: camera, lights, models up"},
        {"WATCHDOG": "1"},
        {"STOPPING": "1", "STATUS": "stopping: SIGTERM"},
    ]


def test_errno_and_one_line_status(listener):
    notifier = SystemdNotifier.from_environment(listener.environment())
    notifier.errno(19, "camera not found:\nplug it in")
    _, _, fields = listener.wait_for(lambda m: "ERRNO" in m)
    assert fields == {"ERRNO": "19", "STATUS": "camera not found: plug it in"}


def test_abstract_socket():
    name = f"station-test-{uuid.uuid4().hex}"
    listening = NotifyListener(abstract=name)
    try:
        notifier = SystemdNotifier.from_environment(listening.environment())
        assert notifier.address == b"\0" + name.encode()
        assert notifier.ready()
        _, _, fields = listening.wait_for(lambda m: "READY" in m)
        assert fields == {"READY": "1"}
    finally:
        listening.close()


def test_no_notify_socket_means_no_op():
    notifier = SystemdNotifier.from_environment({})
    assert not notifier.enabled
    assert notifier.ready() is False and notifier.watchdog() is False
    assert notifier.watchdog_interval_s is None


def test_relative_notify_socket_is_refused_not_used(caplog):
    notifier = SystemdNotifier.from_environment({"NOTIFY_SOCKET": "relative/notify.sock"})
    assert not notifier.enabled
    assert "neither an absolute path nor an abstract socket" in caplog.text


def test_a_vanished_socket_is_logged_once_not_raised(tmp_path, caplog):
    listening = NotifyListener(tmp_path / "gone.sock")
    notifier = SystemdNotifier.from_environment(listening.environment())
    listening.close()
    os.unlink(tmp_path / "gone.sock")
    assert notifier.watchdog() is False
    assert notifier.watchdog() is False
    assert caplog.text.count("cannot notify systemd") == 1


def test_unset_removes_the_variables_for_child_processes(listener):
    env = listener.environment(WATCHDOG_USEC="30000000", WATCHDOG_PID=str(os.getpid()))
    notifier = SystemdNotifier.from_environment(env, unset=True)
    assert notifier.enabled and notifier.watchdog_interval_s == 30.0
    assert "NOTIFY_SOCKET" not in env and "WATCHDOG_USEC" not in env


def test_watchdog_interval_only_for_our_pid():
    assert watchdog_interval_usec({"WATCHDOG_USEC": "20000000"}) == 20_000_000
    assert watchdog_interval_usec({"WATCHDOG_USEC": "20000000",
                                   "WATCHDOG_PID": str(os.getpid())}) == 20_000_000
    assert watchdog_interval_usec({"WATCHDOG_USEC": "20000000",
                                   "WATCHDOG_PID": str(os.getpid() + 1)}) is None
    assert watchdog_interval_usec({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval_usec({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval_usec({}) is None


def test_a_line_without_equals_is_a_programming_error(listener):
    notifier = SystemdNotifier.from_environment(listener.environment())
    with pytest.raises(ValueError, match="KEY=VALUE"):
        notifier.notify("READY")
