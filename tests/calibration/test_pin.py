"""Technician PIN: salted scrypt hash, lockout that survives a restart, set and change."""

from __future__ import annotations

import base64
import hashlib
import json
import stat

import pytest

from calibration.pin import (InvalidPin, PinError, PinLocked, PinNotSet, PinRejected,
                             PinStore, ScryptParameters)

CHEAP = ScryptParameters(n=2 ** 10)  # fast for tests; the default is checked on its own


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def store(path, clock, **options) -> PinStore:
    return PinStore(path, max_failures=3, lockout_minutes=10, clock=clock, parameters=CHEAP,
                    **options)


def test_set_and_verify_stores_a_salted_scrypt_hash_only(tmp_path):
    path = tmp_path / "pin.json"
    pins = PinStore(path)  # default cost
    assert not pins.is_set()
    with pytest.raises(PinNotSet, match="set-pin"):
        pins.verify("1234")
    pins.set_pin("482913")
    assert pins.verify("482913").accepted
    data = json.loads(path.read_text())
    assert "482913" not in path.read_text()
    assert (data["algorithm"], data["n"], data["r"], data["p"]) == ("scrypt", 2 ** 14, 8, 1)
    expected = hashlib.scrypt(b"482913", salt=base64.b64decode(data["salt"]), n=2 ** 14, r=8,
                              p=1, dklen=32)
    assert base64.b64decode(data["hash"]) == expected
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The same PIN set again gets another salt, hence another hash.
    other = PinStore(tmp_path / "other.json")
    other.set_pin("482913")
    assert json.loads((tmp_path / "other.json").read_text())["hash"] != data["hash"]


def test_wrong_pins_lock_out_and_a_restart_does_not_unlock(tmp_path):
    clock = Clock()
    path = tmp_path / "pin.json"
    store(path, clock).set_pin("2468")
    pins = store(path, clock)
    with pytest.raises(PinRejected) as first:
        pins.verify("1111")
    assert first.value.remaining == 2 and "2 attempts left" in str(first.value)
    with pytest.raises(PinRejected):
        pins.verify("2222")
    with pytest.raises(PinLocked, match="locked until"):
        pins.verify("3333")
    restarted = store(path, clock)           # a new process reads the same file
    with pytest.raises(PinLocked) as locked:
        restarted.verify("2468")             # even the right PIN waits
    assert locked.value.seconds_left == pytest.approx(600)
    assert restarted.status().locked_until == pytest.approx(clock.now + 600)
    clock.now += 601
    assert restarted.verify("2468").accepted
    assert restarted.status().failures == 0 and restarted.status().locked_until is None


def test_a_right_pin_resets_the_failure_count(tmp_path):
    clock = Clock()
    pins = store(tmp_path / "pin.json", clock)
    pins.set_pin("2468")
    for _ in range(2):
        with pytest.raises(PinRejected):
            pins.verify("0000")
    assert pins.verify("2468").failures_before == 2
    for _ in range(2):
        with pytest.raises(PinRejected):
            pins.verify("0000")
    assert pins.status().failures == 2 and pins.status().locked_until is None


def test_a_clock_set_back_does_not_lengthen_the_lock(tmp_path):
    clock = Clock()
    pins = store(tmp_path / "pin.json", clock)
    pins.set_pin("2468")
    for _ in range(3):
        with pytest.raises(PinError):
            pins.verify("0000")
    clock.now -= 86_400                       # someone set the clock back a day
    with pytest.raises(PinLocked) as locked:
        pins.verify("2468")
    assert locked.value.seconds_left <= 600


def test_changing_the_pin_needs_the_current_one(tmp_path):
    clock = Clock()
    pins = store(tmp_path / "pin.json", clock)
    pins.set_pin("2468")
    with pytest.raises(PinRejected, match="give the current PIN"):
        pins.set_pin("1357")
    with pytest.raises(PinRejected):
        pins.set_pin("1357", current_pin="9999")
    pins.set_pin("1357", current_pin="2468")
    assert pins.verify("1357").accepted
    with pytest.raises(PinRejected):
        pins.verify("2468")


@pytest.mark.parametrize("bad", ["123", "12ab", "1234567890123", " 1234", ""])
def test_new_pins_must_be_4_to_12_digits(tmp_path, bad):
    with pytest.raises(InvalidPin, match="4 to 12 digits"):
        store(tmp_path / "pin.json", Clock()).set_pin(bad)


def test_a_damaged_pin_file_says_how_to_recover(tmp_path):
    path = tmp_path / "pin.json"
    path.write_text("{not json")
    with pytest.raises(PinError, match="delete it and set the PIN again"):
        store(path, Clock()).verify("1234")


@pytest.mark.parametrize("field, value", [("n", "abc"), ("n", 1000), ("r", None),
                                          ("salt", 17), ("hash", "not base64!"),
                                          ("failures", "three"), ("locked_until", "soon"),
                                          ("set_at", 5)])
def test_a_pin_file_with_a_corrupted_field_is_named_damaged_not_a_traceback(
        tmp_path, field, value):
    path = tmp_path / "pin.json"
    pins = store(path, Clock())
    pins.set_pin("4711")
    data = json.loads(path.read_text())
    data[field] = value
    path.write_text(json.dumps(data))
    for use in (lambda: pins.verify("4711"), pins.status, lambda: pins.set_pin("2222", "4711")):
        with pytest.raises(PinError, match=rf"damaged \({field} .*delete it and set the PIN "
                                           r"again with `station-app profile set-pin`"):
            use()


def test_two_first_time_set_pins_at_once_set_only_one(tmp_path):
    """Two set-pin runs on a station without a PIN: one sets it, the other is told a PIN
    is set (the check and the write are under one lock)."""
    import threading

    for trial in range(5):
        path = tmp_path / f"pin{trial}.json"
        start = threading.Barrier(2)
        outcomes: dict[str, str] = {}

        def set_pin(pin: str) -> None:
            pins = PinStore(path, parameters=ScryptParameters(n=2 ** 12))
            start.wait()
            try:
                pins.set_pin(pin)
                outcomes[pin] = "set"
            except PinRejected:
                outcomes[pin] = "refused"
        threads = [threading.Thread(target=set_pin, args=(pin,)) for pin in ("1111", "2222")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert sorted(outcomes.values()) == ["refused", "set"], (trial, outcomes)
        winner = next(pin for pin, outcome in outcomes.items() if outcome == "set")
        assert PinStore(path).verify(winner).accepted
