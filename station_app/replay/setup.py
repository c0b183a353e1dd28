"""Opening the models a replay runs with, and describing them for ``run.json``.

A replay names its models explicitly (``--scorer``, ``--fusion``) or takes the station's
configured ones; either way ``run.json`` records name, version and sha256 of each, so a
run says exactly what produced its numbers and a resume cannot silently switch models.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.fusion import ITEM_FEATURES, FusionError, FusionModel, load_fusion
from engines.inspection import Inspector
from engines.item_extraction import ItemExtractor
from engines.reference import (ComparisonSettings, PatchSettings, ReferenceFeatureCache,
                               default_reference_cache_dir)
from engines.scoring import SupervisedScorer
from engines.segmentation import ItemSegmenter
from engines.verdict import DecisionThresholds
from station_app.config import StationConfig
from station_app.errors import StationError
from station_app.models import model_path, open_model

log = logging.getLogger("station_app.replay")


@dataclass
class ReplayModels:
    inspector: Inspector
    info: dict[str, Any]      # models and thresholds, for run.json


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest_info(session) -> dict[str, Any]:
    manifest = session.manifest
    return {"name": manifest.name, "version": manifest.version, "sha256": manifest.sha256,
            "path": str(session.onnx_path), "runtime": session.name}


def open_replay_models(config: StationConfig, scorer_path: Path | None = None,
                       fusion_path: Path | None = None,
                       thresholds: DecisionThresholds | None = None,
                       segmenter_masks: bool = False, batch_size: int = 4,
                       cache_dir: Path | None = None,
                       patch_settings: PatchSettings = PatchSettings(),
                       comparison: ComparisonSettings = ComparisonSettings()) -> ReplayModels:
    """The inspector for a replay. Defaults: the configured scorer, ``fusion.yaml`` beside
    it (P(any) alone when there is none), the configured thresholds."""
    scorer_path = Path(scorer_path or model_path(config.models, config.models.scorer))
    scorer_session = open_model(config.models, config.models.scorer, scorer_path)
    try:
        scorer = SupervisedScorer(scorer_session, max_batch=batch_size,
                                  size=config.models.score_resolution,
                                  views=config.models.score_views)
    except ValueError as error:
        raise StationError(str(error)) from error
    if scorer.size != scorer.trained_size:
        log.warning("scoring at %d px (models.score_resolution); the scorer was trained at %d px "
                    "and its fusion and thresholds were fitted there: re-fit them on a "
                    "validation replay at this size", scorer.size, scorer.trained_size)
    models: dict[str, Any] = {"scorer": _manifest_info(scorer_session)}
    item_scorer = _open_item_scorer(config, batch_size)
    if item_scorer is not None:
        models["item_scorer"] = _manifest_info(item_scorer.session)
    fusion_path = Path(fusion_path) if fusion_path else scorer_path.with_name("fusion.yaml")
    if fusion_path.is_file():
        try:
            fusion = load_fusion(fusion_path)
        except FusionError as error:
            raise StationError(str(error)) from error
        models["fusion"] = {"name": "fusion", "version": str(fusion.provenance.get("date", "")),
                            "sha256": _sha256(fusion_path), "path": str(fusion_path)}
        mismatches = fusion_mismatches(fusion, scorer, item_scorer)
        refit = refit_command(fusion, fusion_path, scorer, item_scorer) if mismatches else ""
        for mismatch in mismatches:
            log.warning("%s: %s: set it back, or re-fit the fusion (%s), then the thresholds",
                        fusion_path, mismatch, refit)
    else:
        fusion = FusionModel.supervised_only()
        models["fusion"] = {"name": "supervised-only", "version": "identity on p_any",
                            "sha256": "", "path": ""}
    extractor = None
    if segmenter_masks:
        segmenter_session = open_model(config.models, config.models.segmenter)
        # Replay reads warped tray images, so no tray geometry is needed (from_tray_image).
        extractor = ItemExtractor(None, ItemSegmenter(segmenter_session),
                                  check_alignment=False)
        models["segmenter"] = _manifest_info(segmenter_session)
    if thresholds is None:
        try:
            thresholds = DecisionThresholds(config.thresholds.ok_below,
                                            config.thresholds.damaged_above)
        except ValueError as error:
            raise StationError(f"configured thresholds: {error}") from error
    cache = ReferenceFeatureCache(cache_dir or default_reference_cache_dir(),
                                  scorer_session.manifest.sha256, patch_settings)
    inspector = Inspector(scorer, cache, fusion, thresholds, comparison, extractor,
                          item_scorer=item_scorer)
    info = {"models": models,
            "thresholds": {"ok_below": thresholds.ok_below,
                           "damaged_above": thresholds.damaged_above},
            "scoring": {"resolution": scorer.size, "views": scorer.views,
                        "item_views": item_scorer.views if item_scorer else None,
                        "item_resolution": item_scorer.size if item_scorer else None,
                        "item_second_resolution": (item_scorer.second_size if item_scorer
                                                   else None),
                        "patch_settings": patch_settings.key_text(),
                        "comparison": repr(comparison), "cpu_count": os.cpu_count()}}
    return ReplayModels(inspector, info)


def fusion_mismatches(fusion: FusionModel, scorer: SupervisedScorer,
                      item_scorer: SupervisedScorer | None) -> list[str]:
    """How the models and settings in use differ from those the fusion was fitted with.
    The fusion's coefficients, and the thresholds fitted after it, are calibrated to one set
    of scores: another model or view count shifts them silently. Provenance fields that a
    fusion file lacks are not checked. ``refit_command`` is the fix for all of them."""
    provenance = fusion.provenance
    found = []

    def differs(key: str, actual: Any) -> bool:
        return actual is not None and provenance.get(key) is not None and provenance[key] != actual

    def setting(key: str, actual: int, what: str, amount: str, name: str) -> None:
        if differs(key, actual):
            found.append(f"{what} is scored {amount.format(actual)} (models.{name}) but the "
                         f"fusion was fitted {amount.format(provenance[key])}")

    if differs("scorer_sha256", _model_sha256(scorer)):
        found.append(f"it was fitted with another tray scorer than {scorer.session.onnx_path}")
    setting("views", scorer.views, "the tray", "with {} view(s)", "score_views")
    uses_item = any(fusion.coefficients.get(name, 0.0) for name in ITEM_FEATURES)
    if item_scorer is None:
        if uses_item:
            found.append("it weighs an item scorer's scores but none is configured "
                         "(models.item_scorer)")
        return found
    item_path = item_scorer.session.onnx_path
    if not uses_item:
        found.append(f"it gives the item scorer {item_path} no weight, so the item crop is "
                     "scored for nothing (models.item_scorer: \"\" stops scoring it)")
        return found
    if differs("item_scorer_sha256", _model_sha256(item_scorer)):
        found.append(f"it was fitted with another item scorer than {item_path}")
    setting("item_views", item_scorer.views, "the item crop", "with {} view(s)",
            "item_score_views")
    setting("item_resolution", item_scorer.size, "the item crop", "at {} px",
            "item_score_resolution")
    # A fusion fitted before the second look existed was fitted without one.
    second = provenance.get("item_second_resolution",
                            0 if "item_resolution" in provenance else None)
    if second is not None and second != item_scorer.second_size:
        found.append(f"the item crop gets {_second_look(item_scorer.second_size)} "
                     f"(models.item_score_second_resolution) but the fusion was fitted with "
                     f"{_second_look(second)}")
    return found


def _second_look(size: int) -> str:
    return f"a second look at {size} px" if size else "no second look"


def refit_command(fusion: FusionModel, fusion_path: Path, scorer: SupervisedScorer,
                  item_scorer: SupervisedScorer | None) -> str:
    """The ``training.fusion_fit`` command that fits ``fusion_path`` again for the models and
    settings in use, all of them named (its defaults might differ from the station's)."""
    data = fusion.provenance.get("data_set")
    data = data if data and Path(data).is_dir() else None     # fitted on another machine
    arguments = ["python", "-m", "training.fusion_fit", "--data", str(data or "DATA"),
                 "--scorer", str(scorer.session.onnx_path), "--views", str(scorer.views)]
    if item_scorer is None:
        arguments += ["--item-scorer", "none"]
    else:
        arguments += ["--item-scorer", str(item_scorer.session.onnx_path),
                      "--item-views", str(item_scorer.views),
                      "--item-size", str(item_scorer.size),
                      "--item-second-size", str(item_scorer.second_size)]
    command = shlex.join([*arguments, "--out", str(fusion_path)])
    return command + ("" if data else " (DATA: the data set's folder)")


def _model_sha256(scorer: SupervisedScorer) -> str | None:
    manifest = scorer.session.manifest
    return manifest.sha256 if manifest is not None else None


def _open_item_scorer(config: StationConfig, batch_size: int) -> SupervisedScorer | None:
    """The configured item scorer (``models.item_scorer``; "" = none), at
    ``models.item_score_resolution``."""
    name = config.models.item_scorer
    if not name:
        return None
    path = model_path(config.models, name)
    if not path.is_file():
        raise StationError(f"item scorer {path} not found: put {name}.onnx and its manifest "
                           f"in {path.parent}, or set models.item_scorer: \"\" to score the "
                           "tray alone")
    session = open_model(config.models, name, path)
    try:
        return SupervisedScorer(session, max_batch=batch_size,
                                size=config.models.item_score_resolution,
                                views=config.models.item_score_views,
                                second_size=config.models.item_score_second_resolution)
    except ValueError as error:
        raise StationError(f"item scorer {path}: {error}") from error
