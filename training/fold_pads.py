"""Fold the "same" padding of exported scorers into their convolutions, manifests kept true.

    .venv/bin/python -m training.fold_pads runs/scorer/scorer.onnx runs/item0/item_scorer.onnx

Scorers exported before the export did this themselves run about 1.5× slower on CPU than
they need to (``training.onnx_export.fold_pads_into_convs`` says why). The network and its
weights are unchanged; each file's manifest gets the new sha256 and a note. A fusion
fitted on the old file names its sha256, so the station warns until it is re-fitted: the
warning prints the command.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Sequence

from engines.manifest import (ModelError, load_manifest, manifest_path_for, sha256_file,
                              write_manifest)
from training.onnx_export import fold_pads_into_convs

NOTE = "Pads folded into the convolutions (training.fold_pads)."


def fold_model(onnx_path: Path) -> int:
    """Fold ``onnx_path`` in place and bring its manifest up to date; how many Pads went."""
    manifest_path = manifest_path_for(onnx_path)
    manifest = load_manifest(manifest_path)
    if manifest.sha256 != sha256_file(onnx_path):
        raise ModelError(onnx_path, f"does not match the sha256 in {manifest_path}; fold "
                                    "only the file its manifest describes")
    folded = fold_pads_into_convs(onnx_path)
    if folded:
        notes = manifest.notes if NOTE in manifest.notes else f"{manifest.notes} {NOTE}".strip()
        write_manifest(dataclasses.replace(manifest, sha256=sha256_file(onnx_path), notes=notes),
                       manifest_path)
    return folded


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", type=Path, nargs="+", help="ONNX files with a manifest")
    args = parser.parse_args(argv)
    for path in args.models:
        try:
            folded = fold_model(path)
        except ModelError as error:
            print(error, file=sys.stderr)
            return 1
        except OSError as error:
            print(f"{path}: {error}", file=sys.stderr)
            return 1
        print(f"{path}: {folded} pads folded" if folded else f"{path}: nothing to fold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
