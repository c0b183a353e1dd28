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
