"""The progress bar shows counts, percentage and a time-left estimate."""

import io

from station_app.progress import ProgressBar


def test_non_interactive_stream_gets_a_line_per_tenth_and_the_end():
    stream = io.StringIO()
    bar = ProgressBar("work", stream=stream, min_interval_s=0.0)
    for done in range(1, 101):
        bar(done, 100)
    lines = stream.getvalue().splitlines()
    assert 9 <= len(lines) <= 12
    assert lines[-1].startswith("work [##############################] 100/100 100%")
    assert "left 00:00" in lines[-1]
    assert "left --:--" in lines[0]


def test_notes_are_appended():
    stream = io.StringIO()
    ProgressBar("train", stream=stream, min_interval_s=0.0)(3, 3, "loss 0.5")
    assert stream.getvalue().rstrip().endswith("loss 0.5")


def test_a_bar_reused_for_the_next_part_of_the_work_starts_its_estimate_again(monkeypatch):
    """One bar for several splits: the second part's time left comes from its own rate, not
    from the first part's start (which gave 'left 12:59:14' for a 26-minute pass)."""
    clock = [0.0]
    monkeypatch.setattr("station_app.progress.time.monotonic", lambda: clock[0])
    stream = io.StringIO()
    bar = ProgressBar("prepare", stream=stream, min_interval_s=0.0)
    for done in range(1, 11):            # 10 images, one a second
        clock[0] += 1.0
        bar(done, 10)
    clock[0] += 600.0                    # other work in between
    for done, seconds in ((1, 1.0), (20, 19.0)):   # the next split: 100, one a second
        clock[0] += seconds
        bar(done, 100)
    assert stream.getvalue().splitlines()[-1] == \
        f"prepare [{'#' * 6}{'-' * 24}] 20/100  20% elapsed 00:19 left 01:20"


def test_elapsed_time_counts_from_the_start_the_work_reports(monkeypatch):
    """A bar made before earlier steps (preparing images) does not count their time: the
    trunk pass showed 'elapsed 05:01' on its first line after 5 minutes of preparation."""
    clock = [0.0]
    monkeypatch.setattr("station_app.progress.time.monotonic", lambda: clock[0])
    stream = io.StringIO()
    bar = ProgressBar("trunk features", stream=stream, min_interval_s=0.0)
    clock[0] += 300.0                    # the steps before this one
    bar(0, 10)
    for done in range(1, 11):
        clock[0] += 1.0
        bar(done, 10)
    assert stream.getvalue().splitlines()[-1].endswith("10/10 100% elapsed 00:10 left 00:00")
