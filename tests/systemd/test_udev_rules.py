"""The udev rules: `udevadm verify` where this systemd has it (systemd 254 and later), and
always a check of the rule grammar udev(7) describes plus what the station needs from
the rules (the Basler vendor, the group, the stable names)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.systemd.units import CORE_UNIT, SYSTEMD, read_unit

RULES = SYSTEMD / "udev/99-inspection-station.rules"

# udev(7): keys that only match, keys that only assign, keys that do both.
MATCH_ONLY = {"ACTION", "DEVPATH", "KERNEL", "KERNELS", "SUBSYSTEMS", "DRIVER", "DRIVERS",
              "ATTRS", "TAGS", "TEST", "PROGRAM", "RESULT", "CONST"}
ASSIGN_ONLY = {"OWNER", "GROUP", "MODE", "RUN", "LABEL", "GOTO", "IMPORT", "OPTIONS",
               "SECLABEL", "WAIT_FOR"}
BOTH = {"SUBSYSTEM", "NAME", "SYMLINK", "ATTR", "SYSCTL", "ENV", "TAG"}
WITH_ARGUMENT = {"ATTR", "ATTRS", "ENV", "SYSCTL", "TEST", "IMPORT", "RUN", "SECLABEL", "CONST"}
TOKEN = re.compile(r'\s*(?P<key>[A-Z_]+)(\{(?P<argument>[^}]*)\})?'
                   r'(?P<operator>==|!=|\+=|-=|:=|=)"(?P<value>[^"]*)"\s*(,|$)')


def parse(line: str) -> list[tuple[str, str | None, str, str]]:
    """The (key, argument, operator, value) of one rule; AssertionError on bad grammar."""
    tokens, position = [], 0
    while position < len(line):
        match = TOKEN.match(line, position)
        assert match, f"cannot parse at column {position + 1}: {line[position:]!r}"
        tokens.append((match["key"], match["argument"], match["operator"], match["value"]))
        position = match.end()
    return tokens


def rules(text: str) -> list[list[tuple[str, str | None, str, str]]]:
    lines = [line.strip() for line in text.splitlines()]
    return [parse(line) for line in lines if line and not line.startswith("#")]


def check(rule: list[tuple[str, str | None, str, str]]) -> None:
    for key, argument, operator, _ in rule:
        assert key in MATCH_ONLY | ASSIGN_ONLY | BOTH, f"unknown key {key}"
        if key in MATCH_ONLY:
            assert operator in ("==", "!="), f"{key} only matches, not {operator}"
        if key in ASSIGN_ONLY:
            assert operator in ("=", "+=", "-=", ":="), f"{key} only assigns, not {operator}"
        assert (argument is not None) == (key in WITH_ARGUMENT) or key in ("IMPORT", "RUN"), key
    assert any(op in ("==", "!=") for _, _, op, _ in rule), "a rule without a match applies " \
                                                             "to every device"


def test_every_rule_follows_the_grammar():
    parsed = rules(RULES.read_text())
    assert len(parsed) == 4
    for rule in parsed:
        check(rule)


def test_the_grammar_check_can_fail():
    with pytest.raises(AssertionError):
        parse('SUBSYSTEM=="tty" ATTRS{serial}=="x"')          # missing comma
    with pytest.raises(AssertionError, match="only matches"):
        check(parse('ATTRS{idVendor}="2676", GROUP="x"'))       # assignment to a match key
    with pytest.raises(AssertionError, match="unknown key"):
        check(parse('SUBSYSTEM=="usb", GRUOP="x"'))


def test_the_rules_give_the_station_what_it_needs():
    parsed = rules(RULES.read_text())
    group = read_unit(CORE_UNIT)["Service"]["Group"][0]
    by_name = {}
    for rule in parsed:
        fields = {(key, argument): value for key, argument, _, value in rule}
        if ("SYMLINK", None) in fields:
            by_name[fields[("SYMLINK", None)]] = fields
            assert fields[("GROUP", None)] == group and fields[("MODE", None)] == "0660"
    camera = by_name["basler-%s{serial}"]
    assert camera[("ATTR", "idVendor")] == "2676" and camera[("SUBSYSTEM", None)] == "usb"
    for name in ("station-lights", "station-scanner"):
        adapter = by_name[name]
        assert adapter[("SUBSYSTEM", None)] == "tty"
        assert set(adapter[("ATTRS", "idVendor")].split("|")) == {"0403", "067b", "1a86"}
        assert adapter[("ATTRS", "serial")].endswith("_ADAPTER_SERIAL")   # filled at install


def test_commented_examples_are_valid_rules_too():
    examples = [line.lstrip("# ").strip() for line in RULES.read_text().splitlines()
                if line.startswith("# SUBSYSTEM==")]
    assert len(examples) == 2
    for line in examples:
        check(parse(line))


def udevadm_has_verify() -> bool:
    if shutil.which("udevadm") is None:
        return False
    done = subprocess.run(["udevadm", "--help"], capture_output=True, text=True, timeout=30)
    return re.search(r"^\s+verify\s", done.stdout, re.MULTILINE) is not None


@pytest.mark.skipif(not udevadm_has_verify(),
                    reason="`udevadm verify` is not available (it came with systemd 254; "
                           "Debian 12 has 252; apt package 'udev' on newer releases)")
def test_udevadm_verify(tmp_path):
    done = subprocess.run(["udevadm", "verify", str(RULES)], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
