"""The watchdog is fed only while the station is healthy; a failure gets a grace period.

The health checks here are scripted (a list of reports the test changes step by step)
and the clock is injected: what is under test is the monitor's decision, sent over a
real notify socket. The checks themselves are tested on real parts in test_health.py
and, with the running core, in test_core.py.
"""

from __future__ import annotations

import pytest

from station_app.service.health import ComponentHealth, HealthReport
from station_app.service.notify import SystemdNotifier
from station_app.service.watchdog import HealthMonitor
from tests.station_app.service.notify_socket import NotifyListener


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def healthy() -> HealthReport:
    return HealthReport((ComponentHealth.ok("camera", "open"),
                         ComponentHealth.ok("lights", "answers"),
                         ComponentHealth.ok("models", "loaded")))


def lights_silent() -> HealthReport:
    return healthy().replace(ComponentHealth.fail("lights", "not answering on /dev/pts/3",
                                                  "check the cable"))


@pytest.fixture
def setup(tmp_path):
    listener = NotifyListener(tmp_path / "notify.sock")
    notifier = SystemdNotifier.from_environment(listener.environment())
    clock = Clock()
    current = {"report": healthy()}
    monitor = HealthMonitor(lambda: current["report"], notifier, grace_s=30.0, clock=clock)
    yield monitor, listener, clock, current
    notifier.close()
    listener.close()


def pets(listener) -> int:
    return sum(1 for _, m in listener.snapshot() if m.get("WATCHDOG") == "1")


def wait_count(listener, predicate, count: int) -> None:
    """Datagrams are delivered asynchronously to the listener thread; wait for them."""
    import time
    deadline = time.monotonic() + 5
    while sum(1 for _, m in listener.snapshot() if predicate(m)) < count:
        assert time.monotonic() < deadline, listener.snapshot()
        time.sleep(0.01)


def test_healthy_steps_pet_and_say_so_once(setup):
    monitor, listener, clock, _ = setup
    for _ in range(3):
        step = monitor.step()
        assert step.petted
        clock.now += 1
    wait_count(listener, lambda m: m.get("WATCHDOG") == "1", 3)
    statuses = [m["STATUS"] for _, m in listener.snapshot() if "STATUS" in m]
    assert statuses == ["healthy: camera, lights, models"]   # sent when it changes only


def test_failure_pets_through_grace_then_stops_and_recovery_pets_again(setup):
    monitor, listener, clock, current = setup
    monitor.step()
    current["report"] = lights_silent()
    step = monitor.step()                       # t = 0 s of the failure
    assert step.petted and "lights FAIL for 0 s" in step.status
    assert "restart in 30 s unless it recovers" in step.status
    clock.now += 29.0
    step = monitor.step()
    assert step.petted and "restart in 1 s" in step.status
    wait_count(listener, lambda m: m.get("WATCHDOG") == "1", 3)
    before = pets(listener)

    clock.now += 1.0                            # 30 s: grace over
    step = monitor.step()
    assert not step.petted
    assert step.status.startswith("lights FAIL for 30 s: not answering on /dev/pts/3")
    assert "watchdog no longer fed" in step.status
    clock.now += 5.0
    assert not monitor.step().petted
    wait_count(listener, lambda m: "no longer fed" in m.get("STATUS", ""), 1)
    assert pets(listener) == before             # no pet while starving

    current["report"] = healthy()               # the adapter came back
    clock.now += 1.0
    step = monitor.step()
    assert step.petted and step.status == "healthy: camera, lights, models"
    wait_count(listener, lambda m: m.get("WATCHDOG") == "1", before + 1)
    wait_count(listener, lambda m: m.get("STATUS") == "healthy: camera, lights, models", 2)


def test_a_new_failure_starts_its_own_grace(setup):
    monitor, _, clock, current = setup
    current["report"] = lights_silent()
    monitor.step()
    clock.now += 20
    current["report"] = healthy()
    monitor.step()                              # recovered: the lights' clock is reset
    clock.now += 1
    current["report"] = lights_silent()
    monitor.step()
    clock.now += 20
    assert monitor.step().petted                # 20 s into the second failure, not 41


def test_a_failure_restart_cannot_cure_never_starves_the_watchdog(setup):
    monitor, _, clock, current = setup
    current["report"] = healthy().replace(
        ComponentHealth.fail("disk", "0.2 GB free", "free space", restart_helps=False))
    for _ in range(3):
        step = monitor.step()
        clock.now += 100
        assert step.petted
    assert "disk FAIL: 0.2 GB free" in step.status
    assert "a restart would not help" in step.status


def test_zero_grace_stops_at_once_and_warnings_still_pet(setup):
    monitor, _, _, current = setup
    monitor.grace_s = 0.0
    current["report"] = healthy().replace(ComponentHealth.warn("disk", "getting full"))
    step = monitor.step()
    assert step.petted and "disk WARN: getting full (running with warnings)" == step.status
    current["report"] = lights_silent()
    assert not monitor.step().petted


def test_negative_grace_is_refused():
    with pytest.raises(ValueError, match="grace_s"):
        HealthMonitor(healthy, None, grace_s=-1)
