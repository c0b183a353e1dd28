"""Station configuration: defaults, overrides, and errors that name file, line and key."""

from __future__ import annotations

import dataclasses
import importlib.resources
import textwrap
from pathlib import Path

import pytest
import yaml

from station_app.config import (
    _constraint_of,
    SECTIONS,
    ConfigError,
    StationConfig,
    load_config,
    to_yaml,
)
from station_app.errors import StationError


def write_config(directory: Path, text: str, name: str = "station.yaml") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load_errors(path: Path, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={} if env is None else env)
    return caught.value


@pytest.fixture(scope="module")
def default() -> StationConfig:
    return load_config(env={})


# ----------------------------------------------------------------- defaults and overrides


def test_packaged_default_loads_and_validates(default):
    assert default.source.origin == "packaged default"
    assert default.data.root.is_absolute()
    assert default.data.captures == default.data.root / "captures"
    assert default.data.datasets == default.data.root / "datasets"
    assert default.models.engine_cache == default.data.root / "engine-cache"
    assert default.models.dir is None and default.camera.settings_file is None
    assert default.thresholds.ok_below <= default.thresholds.damaged_above
    assert isinstance(default.camera.white_balance, tuple)


def test_scoring_views_agree_with_the_scorer(default):
    """The config's choices and default are the scorer's (config stays free of engines)."""
    from engines.scoring import DEFAULT_ITEM_VIEWS, DEFAULT_VIEWS, VIEW_CHOICES
    for name in ("score_views", "item_score_views"):
        field = next(f for f in dataclasses.fields(type(default.models)) if f.name == name)
        assert tuple(_constraint_of(field).choices) == VIEW_CHOICES
    assert default.models.score_views == DEFAULT_VIEWS
    assert default.models.item_score_views == DEFAULT_ITEM_VIEWS


def test_item_score_resolution_agrees_with_the_scorer(default):
    from engines.scoring import DEFAULT_ITEM_SIZE, INPUT_MULTIPLE
    assert default.models.item_score_resolution == DEFAULT_ITEM_SIZE
    field = next(f for f in dataclasses.fields(type(default.models))
                 if f.name == "item_score_resolution")
    assert all(size % INPUT_MULTIPLE == 0 for size in _constraint_of(field).choices)


def test_item_score_second_resolution_agrees_with_the_scorer(default):
    from engines.scoring import DEFAULT_ITEM_SECOND_SIZE, INPUT_MULTIPLE
    assert default.models.item_score_second_resolution == DEFAULT_ITEM_SECOND_SIZE
    field = next(f for f in dataclasses.fields(type(default.models))
                 if f.name == "item_score_second_resolution")
    choices = _constraint_of(field).choices
    assert 0 in choices     # no second look
    assert all(size % INPUT_MULTIPLE == 0 for size in choices if size)


def test_packaged_default_sets_exactly_the_schema_keys():
    text = (importlib.resources.files("station_app") / "default_config.yaml").read_text()
    written = {section: set(keys) for section, keys in yaml.safe_load(text).items()}
    schema = {name: {f.name for f in dataclasses.fields(section)}
              for name, section in SECTIONS.items()}
    assert written == schema


def test_every_packaged_key_is_documented_by_a_comment_above_it():
    text = (importlib.resources.files("station_app") / "default_config.yaml").read_text()
    lines = text.splitlines()
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    undocumented = []
    for _, section in root.value:
        key_lines = {key.start_mark.line for key, _ in section.value}
        for key, _ in section.value:
            above = key.start_mark.line - 1
            while above in key_lines:  # keys listed together may share one comment
                above -= 1
            if not lines[above].strip().startswith("#"):
                undocumented.append(key.value)
    assert undocumented == []


def test_station_config_environment_variable_names_the_file(tmp_path):
    path = write_config(tmp_path, """
        station:
          id: dock-7
    """)
    config = load_config(env={"STATION_CONFIG": str(path)})
    assert config.station.id == "dock-7"
    assert config.source.origin == "STATION_CONFIG"
    assert config.source.path == str(path)


def test_path_argument_wins_over_environment(tmp_path):
    from_env = write_config(tmp_path, "station:\n  id: from-env\n", "env.yaml")
    from_argument = write_config(tmp_path, "station:\n  id: from-argument\n", "arg.yaml")
    config = load_config(from_argument, env={"STATION_CONFIG": str(from_env)})
    assert config.station.id == "from-argument"
    assert config.source.origin == "argument"


def test_partial_override_keeps_every_other_default(tmp_path, default):
    path = write_config(tmp_path, """
        camera:
          exposure_us: 1234
        ui:
          language: de
    """)
    config = load_config(path, env={})
    expected = dataclasses.replace(
        default,
        camera=dataclasses.replace(default.camera, exposure_us=1234.0),
        ui=dataclasses.replace(default.ui, language="de"))
    assert config == expected


def test_empty_file_and_empty_section_keep_the_defaults(tmp_path, default):
    assert load_config(write_config(tmp_path, "", "empty.yaml"), env={}) == default
    assert load_config(write_config(tmp_path, "camera:\n", "section.yaml"), env={}) == default


def test_numbers_are_read_as_the_field_type(tmp_path):
    path = write_config(tmp_path, """
        camera:
          gain_db: 3
          exposure_us: 1e6
          white_balance: [2, 1, 1.5]
          serial: 40012345
    """)
    camera = load_config(path, env={}).camera
    assert camera.gain_db == 3.0 and isinstance(camera.gain_db, float)
    assert camera.exposure_us == 1_000_000.0
    assert camera.white_balance == (2.0, 1.0, 1.5)
    assert camera.serial == "40012345"


# ----------------------------------------------------------------- paths


def test_relative_paths_are_relative_to_the_config_file(tmp_path):
    path = write_config(tmp_path / "etc", """
        data:
          root: store
          datasets: ../sets
        camera:
          settings_file: camera/a2A4096.pfs
    """)
    config = load_config(path, env={})
    assert config.data.root == tmp_path / "etc" / "store"
    assert config.data.captures == tmp_path / "etc" / "store" / "captures"
    assert config.data.datasets == tmp_path / "sets"
    assert config.models.engine_cache == tmp_path / "etc" / "store" / "engine-cache"
    assert config.camera.settings_file == tmp_path / "etc" / "camera" / "a2A4096.pfs"


def test_home_and_environment_variables_are_expanded(tmp_path):
    path = write_config(tmp_path, """
        data:
          root: ~/station
          captures: ${CAPTURE_DISK}/captures
    """)
    config = load_config(path, env={"HOME": "/home/associate", "CAPTURE_DISK": "/mnt/disk"})
    assert config.data.root == Path("/home/associate/station")
    assert config.data.captures == Path("/mnt/disk/captures")


def test_unset_environment_variable_is_an_error(tmp_path):
    path = write_config(tmp_path, """
        data:
          root: /srv/station
          captures: $CAPTURE_DISK/captures
    """)
    error = load_errors(path)
    assert f"{path}:3: data.captures: environment variable CAPTURE_DISK is not set" in str(error)


def test_settings_file_must_be_a_pfs_file(tmp_path):
    path = write_config(tmp_path, "camera:\n  settings_file: camera.txt\n")
    assert f"{path}:2: camera.settings_file:" in str(load_errors(path))


# ----------------------------------------------------------------- field errors


def test_unknown_key_names_file_line_field_allowed_keys_and_suggestion(tmp_path):
    path = write_config(tmp_path, """
        camera:
          width: 2048
          exposrue_us: 900
    """)
    error = load_errors(path)
    [problem] = error.problems
    assert (problem.file, problem.line, problem.key) == (str(path), 3, "camera.exposrue_us")
    message = str(error)
    assert f"{path}:3: camera.exposrue_us: unknown key; did you mean 'exposure_us'?" in message
    assert "allowed keys in camera: driver, serial, pixel_format, width, height" in message


def test_unknown_section_lists_the_sections(tmp_path):
    path = write_config(tmp_path, """
        station:
          id: a
        lights:
          mode: strobe
    """)
    message = str(load_errors(path))
    assert f"{path}:3: lights: unknown key; did you mean 'lighting'?" in message
    assert ("station, data, camera, lighting, scanner, models, thresholds, calibration, ui"
            in message)


@pytest.mark.parametrize("line, expected", [
    ("  width: wide", 'camera.width: expected a whole number, got the text "wide"'),
    ("  width: 4096.0", "camera.width: expected a whole number, got the number 4096.0"),
    ("  gain_db: '3'", 'camera.gain_db: expected a number, got the text "3"'),
    ("  gain_db: true", "camera.gain_db: expected a number, got true"),
    ("  white_balance: 1.0", "camera.white_balance: expected a list of numbers"),
    ("  serial: [1, 2]", "camera.serial: expected text"),
    ("  exposure_us: .nan", "camera.exposure_us: expected a number, got .nan"),
])
def test_wrong_type_names_the_expected_type(tmp_path, line, expected):
    path = write_config(tmp_path, f"station:\n  id: a\ncamera:\n{line}\n")
    assert f"{path}:4: {expected}" in str(load_errors(path))


@pytest.mark.parametrize("value", ["yes", "'true'", "1", "on", "0"])
def test_switches_accept_only_true_or_false(tmp_path, value):
    path = write_config(tmp_path, f"ui:\n  fullscreen: {value}\n")
    assert f"{path}:2: ui.fullscreen: expected true or false" in str(load_errors(path))


@pytest.mark.parametrize("value", ["0100", "1:30"])
def test_octal_and_base_60_integers_are_refused(tmp_path, value):
    path = write_config(tmp_path, f"camera:\n  offset_x: {value}\n")
    assert (f"{path}:2: camera.offset_x: {value} is ambiguous in YAML"
            in str(load_errors(path)))


def test_missing_value_is_a_wrong_type(tmp_path):
    path = write_config(tmp_path, "ui:\n  font_scale:\n")
    assert f"{path}:2: ui.font_scale: expected a number, got no value" in str(load_errors(path))


def test_out_of_range_says_what_is_allowed_with_unit(tmp_path):
    path = write_config(tmp_path, """
        station:
          id: dock-1
        camera:
          exposure_us: 5
    """)
    error = load_errors(path)
    assert str(error).splitlines()[1] == (
        f"{path}:4: camera.exposure_us: 5 is out of range; allowed 20 to 1000000 (microseconds)")


def test_out_of_range_list_item_points_at_its_own_line(tmp_path):
    path = write_config(tmp_path, """
        camera:
          white_balance:
            - 1.0
            - 9.5
            - 1.0
    """)
    assert (f"{path}:4: camera.white_balance[1]: 9.5 is out of range; allowed 0.1 to 8"
            in str(load_errors(path)))


@pytest.mark.parametrize("line, expected", [
    ("  channels: []", "lighting.channels: has 0 items; allowed 1 to 8 items"),
    ("  channels: [1, 3, 1]", "lighting.channels[2]: 1 is listed twice"),
    ("  channels: [0]", "lighting.channels[0]: 0 is out of range; allowed 1 to 8"),
    ("  baudrate: 10000", "lighting.baudrate: 10000 is not allowed; allowed: 1200, 2400"),
])
def test_list_and_choice_constraints(tmp_path, line, expected):
    path = write_config(tmp_path, f"lighting:\n{line}\n")
    assert f"{path}:2: {expected}" in str(load_errors(path))


def test_bad_choice_lists_choices_and_suggests_the_closest(tmp_path):
    path = write_config(tmp_path, """
        camera:
          driver: baslr
    """)
    assert (f"{path}:2: camera.driver: \"baslr\" is not allowed; did you mean 'basler'? "
            f"allowed: basler, emulated, replay") in str(load_errors(path))


def test_pattern_mismatch_says_what_is_allowed(tmp_path):
    path = write_config(tmp_path, "station:\n  id: dock 7\n")
    assert (f"{path}:2: station.id: \"dock 7\" is not allowed; use 1 to 32 letters"
            in str(load_errors(path)))


def test_duplicate_key_is_an_error(tmp_path):
    path = write_config(tmp_path, """
        ui:
          language: de
          touch: true
          language: fr
    """)
    assert (f"{path}:4: ui.language: duplicate key; first given on line 2"
            in str(load_errors(path)))


def test_bad_yaml_syntax_gives_line_and_column(tmp_path):
    path = write_config(tmp_path, """
        ui:
          touch: true
          language: en: de
    """)
    error = load_errors(path)
    [problem] = error.problems
    assert (problem.line, problem.column) == (3, 15)
    assert f"{path}:3:15: YAML syntax error: mapping values are not allowed here" in str(error)


def test_top_level_must_be_a_mapping(tmp_path):
    path = write_config(tmp_path, "- camera\n- ui\n")
    assert f"{path}:1: expected a mapping of sections" in str(load_errors(path))


def test_missing_file_says_so(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError, match="does not exist") as caught:
        load_config(missing, env={})
    assert str(missing) in str(caught.value)
    with pytest.raises(ConfigError, match=r"given by STATION_CONFIG\) does not exist"):
        load_config(env={"STATION_CONFIG": str(missing)})


def test_config_error_is_a_station_error(tmp_path):
    assert isinstance(load_errors(write_config(tmp_path, "ui: 3\n")), StationError)


def test_several_errors_are_reported_together_in_line_order(tmp_path):
    path = write_config(tmp_path, """
        camera:
          width: 10
          driver: usb
        ui:
          font_scale: big
          fulscreen: true
    """)
    error = load_errors(path)
    lines = str(error).splitlines()
    assert lines[0] == f"invalid configuration {path}: 4 errors"
    assert [problem.line for problem in error.problems] == [2, 3, 5, 6]
    assert [problem.key for problem in error.problems] == [
        "camera.width", "camera.driver", "ui.font_scale", "ui.fulscreen"]
    assert len(lines) == 5


# ----------------------------------------------------------------- cross-field rules


def test_thresholds_out_of_order_blame_the_key_the_user_set(tmp_path):
    path = write_config(tmp_path, """
        station:
          id: dock-1
        thresholds:
          ok_below: 0.8
    """)
    error = load_errors(path)
    [problem] = error.problems
    assert (problem.line, problem.key) == (4, "thresholds.ok_below")
    assert "thresholds.ok_below (0.8) is above thresholds.damaged_above (0.7)" in str(error)


def test_thresholds_blame_damaged_above_when_only_it_was_set(tmp_path):
    path = write_config(tmp_path, "thresholds:\n  damaged_above: 0.1\n")
    [problem] = load_errors(path).problems
    assert (problem.line, problem.key) == (2, "thresholds.damaged_above")


@pytest.mark.parametrize("text, line, key", [
    ("lighting:\n  mode: strobe\n  pulse_width_us: 9000\n", 3, "lighting.pulse_width_us"),
    ("lighting:\n  channels: [1]\n  driver: serial\n", 3, "lighting.port"),
    ("scanner:\n  min_length: 40\n  max_length: 20\n", 2, "scanner.min_length"),
    ("camera:\n  pixel_format: BayerRG8\n  width: 2047\n", 3, "camera.width"),
    ("camera:\n  offset_x: 5000\n", 2, "camera.offset_x"),
    ("camera:\n  driver: replay\n", 2, "camera.image_source"),
])
def test_cross_field_rules_point_at_a_line(tmp_path, text, line, key):
    path = write_config(tmp_path, text)
    [problem] = load_errors(path).problems
    assert (problem.file, problem.line) == (str(path), line)
    assert key in str(problem)


def test_cross_field_rules_pass_when_consistent(tmp_path):
    path = write_config(tmp_path, """
        lighting:
          driver: serial
          port: /dev/ttyUSB0
          mode: strobe
          pulse_delay_us: 100
          pulse_width_us: 7900
    """)
    assert load_config(path, env={}).lighting.port == "/dev/ttyUSB0"


def test_calibration_paths_default_under_the_data_root(tmp_path, default):
    calibration = default.calibration
    assert calibration.profile_dir == default.data.root / "profiles"
    assert calibration.pin_file == default.data.root / "technician-pin.json"
    assert (calibration.pin_max_failures, calibration.pin_lockout_minutes) == (5, 15.0)
    assert (calibration.tray_width_mm, calibration.tray_height_mm) == (600.0, 600.0)
    path = write_config(tmp_path, """
        data:
          root: data
        calibration:
          pin_file: secrets/pin.json
    """)
    config = load_config(path, env={})
    assert config.calibration.profile_dir == tmp_path / "data" / "profiles"
    assert config.calibration.pin_file == tmp_path / "secrets" / "pin.json"


@pytest.mark.parametrize("line, expected", [
    ("pin_max_failures: 0", "calibration.pin_max_failures: 0 is out of range; allowed 1 to "
                            "20 (wrong PINs in a row)"),
    ("pin_max_failures: 2.5", "calibration.pin_max_failures: expected a whole number"),
    ("pin_lockout_minutes: 0.5", "calibration.pin_lockout_minutes: 0.5 is out of range; "
                                 "allowed 1 to 1440 (minutes)"),
    ("tray_width_mm: 0", "calibration.tray_width_mm: 0 is out of range"),
    ("pin_lockout: 5", "calibration.pin_lockout: unknown key; did you mean "
                       "'pin_lockout_minutes'?"),
])
def test_calibration_keys_are_checked(tmp_path, line, expected):
    path = write_config(tmp_path, f"calibration:\n  {line}\n")
    assert f"{path}:2: {expected}" in str(load_errors(path))


# ----------------------------------------------------------------- writing back


def test_to_yaml_round_trip_gives_an_equal_config(tmp_path, default):
    path = write_config(tmp_path / "etc", """
        station:
          id: dock-3
          name: "Dock 3: returns"
        data:
          root: data
        camera:
          serial: "0042"
          white_balance: [1.8, 1.0, 2.25]
          settings_file: camera.pfs
          exposure_us: 1e5
        lighting:
          channels: [2, 4]
        ui:
          fullscreen: true
    """)
    config = load_config(path, env={})
    assert config != default
    written = write_config(tmp_path / "elsewhere", to_yaml(config), "shown.yaml")
    assert load_config(written, env={}) == config


# ----------------------------------------------------------------- automatic capture


def test_auto_trigger_is_off_by_default_and_its_keys_are_checked(tmp_path, default):
    auto = default.auto_trigger
    assert (auto.enabled, auto.interval_s, auto.still_frames) == (False, 0.3, 4)
    path = write_config(tmp_path, "auto_trigger:\n  enabled: true\n  still_frames: 0\n"
                                  "  interval_s: 0.01\n")
    message = str(load_errors(path))
    assert f"{path}:3: auto_trigger.still_frames: 0 is out of range; allowed 1 to 50" in message
    assert f"{path}:4: auto_trigger.interval_s: 0.01 is out of range" in message
    path = write_config(tmp_path, "auto_trigger:\n  enabled: true\n  interval_s: 0.2\n",
                        "on.yaml")
    config = load_config(path, env={})
    assert config.auto_trigger.enabled and config.auto_trigger.interval_s == 0.2
