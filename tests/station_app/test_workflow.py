"""The inspection workflow with real parts: the lighting simulator on a pty, a replay camera
over a synthetic frame, the bundled segmenter and scorer. Time is a fake clock."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.camera import ReplayCamera
from drivers.lighting.gardasoft import GardasoftController
from drivers.lighting.simulator import GardasoftSimulator
from drivers.lighting.state import ChannelMode
from engines.inspection import Inspector, ReferenceImage
from engines.item_crop import square_item_crop
from engines.item_extraction import ItemExtractor
from engines.segmentation import ItemSegmenter
from engines.tray_geometry import TrayGeometry
from station_app.config import load_config
from station_app.models import open_model
from station_app.replay.setup import open_replay_models
from station_app.workflow import (Back, CaptureSaved, CommandIgnored, Confirm, ConfirmationSaved,
                                  Fault, InspectionWorkflow, ItemRejected, ItemScanned, ItemTyped,
                                  MemoryCaptureSink, Retry, SignIn, SignOut, State, StateChanged,
                                  StillnessDetector, Tick, Timeouts, Trigger, TriggerSource,
                                  VerdictReady)
from station_app.workflow.commands import Severity
from training.synth import render_capture
from training.synth.plan import plan_item

ITEM = "ITEM-0001"
CHANNELS = (1, 2)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class Recorder:
    """Collects events; ``wait_for`` waits (with a safety limit) for one that matches."""

    def __init__(self) -> None:
        self.events: list = []
        self._changed = threading.Condition()

    def __call__(self, event) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_for(self, predicate, limit_s: float = 30.0):
        with self._changed:
            assert self._changed.wait_for(lambda: any(map(predicate, self.events)), limit_s), \
                self.events
            return next(e for e in self.events if predicate(e))

    def of(self, kind) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    def states(self) -> list[State]:
        return [e.new for e in self.of(StateChanged)]


class GatedExtractor:
    """The real extractor, held at a gate so a test can act while processing runs."""

    def __init__(self, extractor: ItemExtractor) -> None:
        self.extractor = extractor
        self.gate = threading.Event()

    def from_frame(self, frame):
        assert self.gate.wait(30.0)
        return self.extractor.from_frame(frame)


@pytest.fixture(scope="module")
def scene():
    plan = plan_item(seed=3, index=0)
    return render_capture(plan.identity, plan.queries[0])


def _write_frame(folder: Path, rgb: np.ndarray) -> Path:
    folder.mkdir()
    assert cv2.imwrite(str(folder / "frame.bmp"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return folder


def _without_item(scene) -> np.ndarray:
    """The frame with the item painted over in the tray's colour: an empty tray."""
    geometry = TrayGeometry.from_array(scene.corners)
    grown = cv2.dilate(scene.item_mask.astype(np.uint8), np.ones((41, 41), np.uint8))
    height, width = scene.frame.shape[:2]
    in_frame = cv2.warpPerspective(grown, np.linalg.inv(geometry.homography), (width, height),
                                   flags=cv2.INTER_NEAREST) > 0
    frame = scene.frame.copy()
    frame[in_frame] = np.median(scene.tray[scene.item_mask == 0].reshape(-1, 3), axis=0)
    return frame


@pytest.fixture(scope="module")
def frames(tmp_path_factory, scene) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("workflow_frames")
    return {"item": _write_frame(root / "item", scene.frame),
            "empty": _write_frame(root / "empty", _without_item(scene))}


@pytest.fixture(scope="module")
def models(tmp_path_factory, scene):
    config = load_config(None)
    replay = open_replay_models(config, cache_dir=tmp_path_factory.mktemp("reference_cache"))
    segmenter = ItemSegmenter(open_model(config.models, config.models.segmenter))
    return ItemExtractor(TrayGeometry.from_array(scene.corners), segmenter), replay.inspector


@pytest.fixture
def simulator():
    with GardasoftSimulator(channel_count=4) as simulator:
        yield simulator


@pytest.fixture
def lights(simulator):
    controller = GardasoftController(simulator.port, channel_count=4, timeout_s=0.2).open()
    for channel in CHANNELS:
        controller.set_brightness(channel, 70)
    controller.off()
    yield controller
    controller.close()


@pytest.fixture
def station(frames, models, lights):
    """Build a workflow; ``station(frames='item', extractor=..., inspector=...)``."""
    made = []

    def build(frame_set: str = "item", **options):
        extractor, inspector = models
        camera = ReplayCamera(frames[frame_set])
        camera.open()
        clock = options.pop("clock", FakeClock())
        sink = options.pop("sink", MemoryCaptureSink())
        workflow = InspectionWorkflow(camera=camera, lights=lights,
                                      extractor=options.pop("extractor", extractor),
                                      inspector=options.pop("inspector", inspector),
                                      sink=sink, clock=clock, **options)
        recorder = Recorder()
        workflow.subscribe(recorder)
        made.append((workflow, camera))
        return workflow, recorder, sink, camera, clock
    yield build
    for workflow, camera in made:
        workflow.close()
        camera.close()


def _to_waiting(workflow: InspectionWorkflow) -> None:
    workflow.submit(SignIn("badge-7"))
    workflow.submit(ItemScanned(ITEM))
    assert workflow.wait_until_idle()
    assert workflow.state is State.WAITING_FOR_ITEM


def test_happy_path_passes_every_state_and_stores_everything(station, simulator):
    workflow, recorder, sink, _, _ = station()
    _to_waiting(workflow)
    workflow.submit(Trigger(TriggerSource.PEDAL))
    verdict = recorder.wait_for(lambda e: isinstance(e, VerdictReady))
    assert workflow.wait_until_idle() and workflow.state is State.VERDICT_SHOWN
    assert verdict.label in ("OK", "REVIEW", "DAMAGED") and 0.0 <= verdict.fused_score <= 1.0
    assert verdict.tray_image.shape == (2048, 2048, 3) and verdict.heatmap.ndim == 2
    # Storing the frame and the result sit between trigger and verdict, so they are timed.
    assert {"grab", "store_frame", "segmentation", "supervised", "processing_total",
            "store_result"} <= set(verdict.timings_ms)
    crop = verdict.item_crop            # what the screen shows beside the reference
    assert crop is not None and crop.ndim == 3 and crop.shape[0] == crop.shape[1] > 64
    assert verdict.reference_crop is None            # the item has no reference yet
    workflow.submit(Confirm(agree=False, severity=Severity.MINOR, defect_types=("deformation",)))
    recorder.wait_for(lambda e: isinstance(e, ConfirmationSaved))
    assert workflow.wait_until_idle() and workflow.state is State.SIGNED_IN

    assert recorder.states() == [State.SIGNED_IN, State.ITEM_IDENTIFIED, State.WAITING_FOR_ITEM,
                                 State.CAPTURING, State.PROCESSING, State.VERDICT_SHOWN,
                                 State.CONFIRMED, State.SIGNED_IN]
    capture_id = verdict.capture_id
    assert sink.log == [("save", capture_id), ("outcome", capture_id), ("confirm", capture_id)]
    record = sink.captures[capture_id]
    assert (record.operator, record.item_identifier, record.trigger) == ("badge-7", ITEM, "pedal")
    assert record.lighting["1"]["mode"] == "CONTINUOUS" and record.lighting["1"]["percent"] == 70
    assert sink.outcomes[capture_id].scores.fused == pytest.approx(verdict.fused_score)
    assert "store_frame" in sink.outcomes[capture_id].timings_ms   # kept with the result
    confirmation = sink.confirmations[capture_id]
    assert (confirmation.agree, confirmation.severity, confirmation.defect_types,
            confirmation.verdict_label) == (False, "minor", ("deformation",), verdict.label)
    assert all(simulator.channel(c).mode is ChannelMode.OFF for c in CHANNELS)
    saved = recorder.of(CaptureSaved)
    assert recorder.events.index(saved[0]) < recorder.events.index(verdict)


def test_the_verdict_carries_the_first_reference_crop(station, scene):
    loads = []

    def load():
        loads.append(1)
        return scene.tray, scene.item_mask
    reference = ReferenceImage("scene-reference", load)
    workflow, recorder, _, _, _ = station(references=lambda item: [reference] if item == ITEM
                                          else [])
    _to_waiting(workflow)
    workflow.submit(Trigger())
    verdict = recorder.wait_for(lambda e: isinstance(e, VerdictReady))
    expected = square_item_crop(scene.tray, scene.item_mask)[0]
    assert verdict.reference_crop is not None and loads
    np.testing.assert_array_equal(verdict.reference_crop, expected)
    assert verdict.item_crop.shape[2] == 3


_fresh_identities = itertools.count()


def test_an_items_reference_banks_are_built_when_it_is_scanned(station, scene, models):
    """Banks of references the station has not seen are built while the associate places
    the item; the capture after the trigger builds none and uses them."""
    cache = models[1].cache
    loads = []

    def load():
        loads.append(1)
        return scene.tray, scene.item_mask
    reference = ReferenceImage(f"scanned-{next(_fresh_identities)}-{time.time_ns()}", load)
    workflow, recorder, _, _, _ = station(references=lambda item: [reference] if item == ITEM
                                          else [])
    before = cache.computed
    _to_waiting(workflow)                       # waits for the worker to be idle
    assert cache.computed == before + 1 and cache.load(reference.identity) is not None
    assert not recorder.of(Fault)
    workflow.submit(Trigger())
    verdict = recorder.wait_for(lambda e: isinstance(e, VerdictReady))
    assert workflow.wait_until_idle()
    assert cache.computed == before + 1          # nothing embedded after the trigger
    assert "reference" in verdict.timings_ms and verdict.reference_crop is not None
    assert len(loads) == 2        # the bank once, the crop shown beside the item once


def test_a_trigger_stops_the_reference_prefetch_after_the_bank_in_hand(station, scene):
    """The associate was quicker than the banks: the capture waits for the one being built,
    not for the rest, which processing builds after the frame is stored."""
    entered, release = threading.Event(), threading.Event()
    stored_when_loaded: dict[str, list[int]] = {}
    sink = MemoryCaptureSink()

    def loader(name):
        def load():
            stored_when_loaded.setdefault(name, []).append(len(sink.log))
            if name == "first" and not entered.is_set():
                entered.set()
                assert release.wait(10)
            return scene.tray, scene.item_mask
        return load
    stamp = time.time_ns()
    references = [ReferenceImage(f"{name}-{stamp}", loader(name))
                  for name in ("first", "second", "third")]
    workflow, recorder, _, _, _ = station(sink=sink, references=lambda item: references
                                          if item == ITEM else [])
    workflow.submit(SignIn("badge-7"))
    workflow.submit(ItemScanned(ITEM))
    assert entered.wait(10)                       # the prefetch is building the first bank
    workflow.submit(Trigger())
    recorder.wait_for(lambda e: isinstance(e, StateChanged) and e.new is State.CAPTURING)
    release.set()
    recorder.wait_for(lambda e: isinstance(e, VerdictReady))
    assert workflow.wait_until_idle()
    assert stored_when_loaded["first"][0] == 0    # built before the capture
    assert stored_when_loaded["second"][0] >= 1   # the rest after the frame was stored
    assert stored_when_loaded["third"][0] >= 1


def test_references_that_cannot_be_prepared_do_not_stop_the_item(station, caplog):
    """A failing lookup at scan time is logged; the item still waits for its trigger."""
    def lookup(item):
        raise OSError("reference store unreachable")
    workflow, recorder, _, _, _ = station(references=lookup)
    with caplog.at_level("WARNING", logger="station_app.workflow"):
        _to_waiting(workflow)
    assert workflow.state is State.WAITING_FOR_ITEM and not recorder.of(Fault)
    assert "reference store unreachable" in caplog.text


def test_a_second_trigger_while_busy_is_ignored_not_queued(station, models):
    gated = GatedExtractor(models[0])
    workflow, recorder, sink, _, _ = station(extractor=gated)
    _to_waiting(workflow)
    workflow.submit(Trigger())
    workflow.submit(Trigger())          # handled while capturing
    recorder.wait_for(lambda e: isinstance(e, StateChanged) and e.new is State.PROCESSING)
    workflow.submit(Trigger(TriggerSource.AUTO))   # while processing
    recorder.wait_for(lambda e: isinstance(e, CommandIgnored)
                      and e.state is State.PROCESSING)
    gated.gate.set()
    assert workflow.wait_until_idle()
    ignored = recorder.of(CommandIgnored)
    assert [(e.command, e.state) for e in ignored] == [("Trigger", State.CAPTURING),
                                                       ("Trigger", State.PROCESSING)]
    assert "not queued" in ignored[0].reason
    assert len(sink.captures) == 1 and len(recorder.of(VerdictReady)) == 1
    assert workflow.state is State.VERDICT_SHOWN


def test_idle_states_time_out_and_step_back(station):
    timeouts = Timeouts(signed_in_idle_s=60, waiting_for_item_s=30, verdict_shown_s=20)
    workflow, recorder, sink, _, clock = station(timeouts=timeouts)
    _to_waiting(workflow)
    workflow.submit(Tick(clock.advance(29)))
    assert workflow.wait_until_idle() and workflow.state is State.WAITING_FOR_ITEM
    workflow.submit(Tick(clock.advance(1)))
    assert workflow.wait_until_idle() and workflow.state is State.SIGNED_IN
    assert "scan the item again" in recorder.of(StateChanged)[-1].message
    workflow.submit(Trigger())                       # the item was dropped with the timeout
    assert workflow.wait_until_idle() and workflow.state is State.SIGNED_IN
    workflow.submit(ItemTyped(ITEM))
    workflow.submit(Trigger())
    recorder.wait_for(lambda e: isinstance(e, VerdictReady))
    assert workflow.wait_until_idle()
    clock.advance(20)
    workflow.submit(Tick())                          # Tick() reads the workflow's clock
    assert workflow.wait_until_idle() and workflow.state is State.SIGNED_IN
    assert len(sink.captures) == 1 and not sink.confirmations   # kept, unconfirmed
    workflow.submit(Tick(clock.advance(59)))
    assert workflow.wait_until_idle() and workflow.state is State.SIGNED_IN
    workflow.submit(Tick(clock.advance(1)))
    assert workflow.wait_until_idle() and workflow.state is State.SIGNED_OUT


def test_hung_processing_times_out_to_a_fault_and_retry_finishes_it(station, models):
    gated = GatedExtractor(models[0])
    workflow, recorder, sink, _, clock = station(extractor=gated,
                                                 timeouts=Timeouts(processing_s=10))
    _to_waiting(workflow)
    workflow.submit(Trigger())
    recorder.wait_for(lambda e: isinstance(e, StateChanged) and e.new is State.PROCESSING)
    workflow.submit(Tick(clock.advance(10)))
    fault = recorder.wait_for(lambda e: isinstance(e, Fault))
    assert (fault.kind, fault.for_whom, fault.recoverable) == ("timeout", "technician", True)
    assert fault.capture_id in sink.captures
    gated.gate.set()                                 # the late result must not move the state
    assert workflow.wait_until_idle() and workflow.state is State.FAULT
    assert not recorder.of(VerdictReady)
    workflow.submit(Retry())
    recorder.wait_for(lambda e: isinstance(e, VerdictReady))
    assert workflow.wait_until_idle() and workflow.state is State.VERDICT_SHOWN
    assert len(sink.captures) == 1                   # processed again, not captured again


def test_silent_lights_fault_then_retry_succeeds(station, simulator):
    workflow, recorder, sink, _, _ = station()
    _to_waiting(workflow)
    simulator.pty.go_silent()
    workflow.submit(Trigger())
    fault = recorder.wait_for(lambda e: isinstance(e, Fault))
    assert workflow.wait_until_idle() and workflow.state is State.FAULT
    assert fault.kind == "lights" and fault.for_whom == "technician" and fault.recoverable
    assert fault.message.startswith("Lights not answering")
    assert not sink.captures
    workflow.submit(Trigger())                       # a fault is left by Retry or Back only
    simulator.pty.resume()
    workflow.submit(Retry())
    verdict = recorder.wait_for(lambda e: isinstance(e, VerdictReady))
    assert workflow.wait_until_idle() and workflow.state is State.VERDICT_SHOWN
    assert list(sink.captures) == [verdict.capture_id]
    assert all(simulator.channel(c).mode is ChannelMode.OFF for c in CHANNELS)


def test_an_empty_tray_is_rejected_with_an_instruction_after_the_frame_is_saved(station):
    workflow, recorder, sink, _, _ = station("empty")
    held_when_rejected: list[bool] = []
    workflow.subscribe(lambda e: held_when_rejected.append(e.capture_id in sink.captures)
                       if isinstance(e, ItemRejected) else None)
    _to_waiting(workflow)
    workflow.submit(Trigger())
    rejected = recorder.wait_for(lambda e: isinstance(e, ItemRejected))
    assert workflow.wait_until_idle() and workflow.state is State.WAITING_FOR_ITEM
    assert [code for code, _ in rejected.issues] == ["no_item"]
    assert "place the item" in rejected.message
    assert held_when_rejected == [True]
    assert sink.outcomes[rejected.capture_id].kind == "rejected"
    assert recorder.of(StateChanged)[-1].message == rejected.message


def test_a_model_error_is_a_fault_and_the_frame_is_already_stored(station, models):
    inspector = models[1]
    without_thresholds = Inspector(inspector.scorer, inspector.cache, inspector.fusion, None)
    workflow, recorder, sink, _, _ = station(inspector=without_thresholds)
    held_at_fault: list[bool] = []
    workflow.subscribe(lambda e: held_at_fault.append(e.capture_id in sink.captures)
                       if isinstance(e, Fault) else None)
    _to_waiting(workflow)
    workflow.submit(Trigger())
    fault = recorder.wait_for(lambda e: isinstance(e, Fault))
    assert workflow.wait_until_idle() and workflow.state is State.FAULT
    assert fault.kind == "model" and "thresholds" in fault.message
    assert held_at_fault == [True]
    assert sink.outcomes[fault.capture_id].kind == "failed"
    workflow.submit(Back())
    assert workflow.wait_until_idle() and workflow.state is State.WAITING_FOR_ITEM


def test_a_camera_gone_is_a_fault_and_retry_captures_when_it_is_back(station):
    workflow, recorder, sink, camera, _ = station()
    _to_waiting(workflow)
    camera.close()
    workflow.submit(Trigger())
    fault = recorder.wait_for(lambda e: isinstance(e, Fault))
    assert workflow.wait_until_idle() and workflow.state is State.FAULT
    assert fault.kind == "camera" and "cable" in fault.message
    camera.open()
    workflow.submit(Retry())
    recorder.wait_for(lambda e: isinstance(e, VerdictReady))
    assert workflow.wait_until_idle() and len(sink.captures) == 1


def test_bad_codes_and_commands_out_of_place_are_ignored_with_a_reason(station):
    workflow, recorder, _, _, _ = station()
    workflow.submit(ItemScanned(ITEM))               # not signed in
    workflow.submit(SignIn("badge-7"))
    workflow.submit(ItemTyped("a b"))                # illegal characters
    workflow.submit(Confirm(agree=True))             # no verdict
    workflow.submit(SignOut())
    assert workflow.wait_until_idle() and workflow.state is State.SIGNED_OUT
    reasons = [e.reason for e in recorder.of(CommandIgnored)]
    assert len(reasons) == 3 and "sign in" in reasons[0] and "illegal" in reasons[1]


def test_state_changes_only_through_commands(station):
    workflow, *_ = station()
    with pytest.raises(AttributeError):
        workflow.state = State.VERDICT_SHOWN
    with pytest.raises(TypeError):
        workflow.submit(State.VERDICT_SHOWN)
    with pytest.raises(AttributeError):
        workflow.last_handled_at = 0.0
    public = {name for name in dir(workflow) if not name.startswith("_")}
    assert public == {"state", "submit", "subscribe", "wait_until_idle", "close", "from_devices",
                      "last_handled_at", "is_alive"}


def test_last_handled_at_advances_when_a_tick_is_handled(station):
    workflow, _, _, _, _ = station()
    assert workflow.wait_until_idle()
    before = workflow.last_handled_at
    time.sleep(0.01)
    workflow.submit(Tick())
    assert workflow.wait_until_idle()
    assert workflow.last_handled_at > before
    assert workflow.last_handled_at <= time.monotonic()


def test_is_alive_until_closed(station):
    """The service's health check asks this instead of reaching into the workflow."""
    workflow, _, _, _, _ = station()
    assert workflow.is_alive()
    workflow.close()
    assert not workflow.is_alive()


def test_stillness_detector_fires_once_per_settled_item(scene, tmp_path):
    empty = _without_item(scene)
    shifted = np.roll(scene.frame, 60, axis=1)       # the item still moving in
    detector = StillnessDetector(empty, still_frames=3)
    seen = [detector.observe(frame) for frame in
            (empty, shifted, scene.frame, scene.frame, scene.frame, scene.frame, scene.frame)]
    assert seen[:5] == [None] * 5
    assert seen[5] == Trigger(TriggerSource.AUTO) and seen[6] is None
    assert detector.observe(empty) is None           # item taken away: armed again
    again = [detector.observe(scene.frame) for _ in range(4)]
    assert again[-1] == Trigger(TriggerSource.AUTO) and again[:-1] == [None] * 3
