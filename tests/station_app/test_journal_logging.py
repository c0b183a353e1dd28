"""Every log line carries the station and the capture; journald priorities under systemd."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import threading

import pytest

from station_app.service.journal_logging import (StationContextFilter, StationFormatter,
                                                 capture_context, set_active_capture,
                                                 setup_logging, stderr_is_journal,
                                                 syslog_priority)


@pytest.fixture
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    set_active_capture(None)


def test_every_line_carries_station_and_capture(restore_root_logger):
    stream = io.StringIO()
    setup_logging("station-07", stream=stream, environ={})
    log = logging.getLogger("station_app.test")
    log.info("idle")
    with capture_context("20250101-abc"):
        log.warning("two\nlines")
    log.info("after")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING) station=station-07 "
                        r"capture=\S+ station_app.test: ", line) for line in lines[:2]), lines
    assert "capture=- station_app.test: idle" in lines[0]
    assert "capture=20250101-abc station_app.test: two" in lines[1]
    assert lines[2].endswith("station=station-07 capture=20250101-abc lines")
    assert "capture=- station_app.test: after" in lines[3]


def test_journal_stream_gets_priority_prefixes_on_every_line(restore_root_logger):
    stream = io.StringIO()
    setup_logging("st-1", level=logging.DEBUG, stream=stream, environ={"JOURNAL_STREAM": "8:12345"})
    log = logging.getLogger("core")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    log.critical("c")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    lines = stream.getvalue().splitlines()
    assert lines[:5] == ["<7>station=st-1 capture=- core: d", "<6>station=st-1 capture=- core: i",
                         "<4>station=st-1 capture=- core: w", "<3>station=st-1 capture=- core: e",
                         "<2>station=st-1 capture=- core: c"]
    traceback_lines = lines[5:]
    assert traceback_lines[0] == "<3>station=st-1 capture=- core: failed"
    assert len(traceback_lines) > 3   # the traceback, each line prefixed for journald
    assert all(line.startswith("<3>station=st-1 capture=- ") for line in traceback_lines)
    assert traceback_lines[-1].endswith("ValueError: boom")


def test_the_active_capture_reaches_threads_the_core_does_not_own(restore_root_logger):
    stream = io.StringIO()
    setup_logging("st", stream=stream, environ={})
    log = logging.getLogger("worker")
    set_active_capture("cap-42")

    def worker():
        log.info("scoring")
        with capture_context("cap-explicit"):
            log.info("explicit wins")
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    set_active_capture(None)
    log.info("between captures")
    lines = stream.getvalue().splitlines()
    assert "capture=cap-42 worker: scoring" in lines[0]
    assert "capture=cap-explicit worker: explicit wins" in lines[1]
    assert "capture=- worker: between captures" in lines[2]


def test_priority_mapping():
    levels = (5, 10, 20, 25, 30, 40, 50)
    assert [syslog_priority(level) for level in levels] == [7, 7, 6, 6, 4, 3, 2]


def test_journal_detection_compares_device_and_inode(tmp_path):
    with open(tmp_path / "stderr", "w") as stream:
        info = os.fstat(stream.fileno())
        assert stderr_is_journal({"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}, stream)
        assert not stderr_is_journal({"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino + 1}"},
                                     stream)
        assert not stderr_is_journal({}, stream)


def test_filter_and_formatter_work_on_any_handler():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", (), None)
    assert StationContextFilter("s9").filter(record)
    assert StationFormatter(journal=True).format(record) == "<6>station=s9 capture=- x: hello"


def test_a_real_journal_stream_process(tmp_path):
    """A child process whose stderr matches JOURNAL_STREAM writes prefixed lines."""
    stderr_path = tmp_path / "stderr"
    with open(stderr_path, "w") as stderr:
        info = os.fstat(stderr.fileno())
        code = ("import logging\n"
                "from station_app.service.journal_logging import setup_logging, capture_context\n"
                "setup_logging('st-x')\n"
                "with capture_context('c1'):\n"
                "    logging.getLogger('child').error('bad')\n")
        subprocess.run([sys.executable, "-c", code], stderr=stderr, check=True, timeout=60,
                       env={**os.environ, "JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"})
    assert stderr_path.read_text() == "<3>station=st-x capture=c1 child: bad\n"
