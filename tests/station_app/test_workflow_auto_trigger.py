"""Automatic capture from the workflow's live view, with real parts: a replay camera whose
folder holds one frame that the test swaps (the "tray": empty, then with the item), the
lighting simulator on a pty, the bundled segmenter and scorer."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.camera import ReplayCamera
from drivers.lighting.state import ChannelMode
from engines.inspection import ReferenceImage
from station_app.workflow import (Back, CaptureSaved, CommandIgnored, Fault, InspectionWorkflow,
                                  ItemRejected, ItemScanned, MemoryCaptureSink, Retry, SignIn,
                                  State, StateChanged, StillnessDetector, Trigger, TriggerSource,
                                  VerdictReady)
from station_app.workflow.auto_trigger import AutoTriggerSettings
from tests.station_app import test_workflow as shared
from tests.station_app.test_workflow import CHANNELS, ITEM, FakeClock, Recorder, _without_item

# The real-part fixtures are shared with the workflow's own tests: the synthetic scene, the
# bundled models, the lighting simulator on a pty and its controller.
scene, models, simulator, lights = shared.scene, shared.models, shared.simulator, shared.lights

FAST = AutoTriggerSettings(interval_s=0.05, still_frames=2)


class WatchedReplayCamera(ReplayCamera):
    """The real replay camera, wrapped to record every grab: which thread, and whether two
    grabs were ever inside at once. ``hold`` cleared makes the next grab wait (a slow camera)
    so a test can act while it is in progress."""

    def __init__(self, source: Path) -> None:
        super().__init__(source)
        self.hold = threading.Event()
        self.hold.set()
        self.holding = threading.Event()
        self.overlaps = 0
        self.threads: set[str] = set()
        self.grabs = 0
        self._inside = 0
        self._counted = threading.Condition()

    def grab(self, timeout_ms: int = 1000):
        with self._counted:
            self._inside += 1
            self.overlaps += self._inside > 1
            self.threads.add(threading.current_thread().name)
        try:
            if not self.hold.is_set():
                self.holding.set()
                assert self.hold.wait(10.0)
            time.sleep(0.005)   # widens the window in which an overlap would be seen
            return super().grab(timeout_ms)
        finally:
            with self._counted:
                self._inside -= 1
                self.grabs += 1
                self._counted.notify_all()

    def wait_grabs(self, count: int, limit_s: float = 15.0) -> None:
        with self._counted:
            assert self._counted.wait_for(lambda: self.grabs >= count, limit_s), self.grabs


class Tray:
    """The one frame the replay camera serves, swapped atomically: what lies in the tray."""

    def __init__(self, folder: Path, pictures: dict[str, Path]) -> None:
        self.folder, self.pictures = folder, pictures
        folder.mkdir()

    def place(self, picture: str) -> None:
        partial = self.folder / "tray.partial"       # not an image name: never served
        shutil.copyfile(self.pictures[picture], partial)
        os.replace(partial, self.folder / "tray.bmp")


@pytest.fixture(scope="module")
def pictures(tmp_path_factory, scene) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("auto_trigger_frames")
    written = {}
    for name, rgb in (("item", scene.frame), ("empty", _without_item(scene))):
        written[name] = root / f"{name}.bmp"
        assert cv2.imwrite(str(written[name]), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return written


@pytest.fixture
def station(tmp_path, pictures, models, lights):
    """``station(first='empty', auto=FAST)`` -> (workflow, recorder, sink, camera, tray)."""
    made = []

    def build(first: str = "empty", auto: AutoTriggerSettings | None = FAST, references=None):
        tray = Tray(tmp_path / f"tray{len(made)}", pictures)
        tray.place(first)
        camera = WatchedReplayCamera(tray.folder)
        camera.open()
        extractor, inspector = models
        sink = MemoryCaptureSink()
        workflow = InspectionWorkflow(camera=camera, lights=lights, extractor=extractor,
                                      inspector=inspector, sink=sink, clock=FakeClock(),
                                      auto_trigger=auto, references=references)
        recorder = Recorder()
        workflow.subscribe(recorder)
        made.append((workflow, camera))
        return workflow, recorder, sink, camera, tray
    yield build
    for workflow, camera in made:
        camera.hold.set()
        workflow.close()
        camera.close()


def _scan_item(workflow: InspectionWorkflow, recorder: Recorder) -> StateChanged:
    workflow.submit(SignIn("badge-7"))
    workflow.submit(ItemScanned(ITEM))
    return recorder.wait_for(lambda e: isinstance(e, StateChanged)
                             and e.new is State.WAITING_FOR_ITEM)


def _lit(simulator) -> bool:
    return all(simulator.channel(c).mode is ChannelMode.CONTINUOUS for c in CHANNELS)


def _dark(simulator) -> bool:
    return all(simulator.channel(c).mode is ChannelMode.OFF for c in CHANNELS)


def _only_the_worker_grabbed(camera: WatchedReplayCamera) -> bool:
    return camera.overlaps == 0 and all(name.startswith("workflow-worker")
                                        for name in camera.threads)


def test_a_placed_item_is_captured_by_itself_once(station, simulator):
    workflow, recorder, sink, camera, tray = station()
    waiting = _scan_item(workflow, recorder)
    assert "lies still" in waiting.message
    camera.wait_grabs(4)                             # the empty tray, then more of it
    assert not sink.captures and workflow.state is State.WAITING_FOR_ITEM
    assert _lit(simulator)                           # live view runs with the lights on
    tray.place("item")
    verdict = recorder.wait_for(lambda e: isinstance(e, VerdictReady))
    assert workflow.wait_until_idle() and workflow.state is State.VERDICT_SHOWN
    assert [sink.captures[verdict.capture_id].trigger] == ["auto"]
    assert _dark(simulator)                          # the capture switched them off
    grabs = camera.grabs
    time.sleep(0.2)
    assert camera.grabs == grabs                     # no live view outside WAITING_FOR_ITEM

    workflow.submit(Back())                          # capture again: the item still lies there
    camera.wait_grabs(grabs + 6)
    assert len(sink.captures) == 1 and workflow.state is State.WAITING_FOR_ITEM
    tray.place("empty")                              # taken away ...
    camera.wait_grabs(camera.grabs + 2)
    tray.place("item")                               # ... and placed again: one more capture
    recorder.wait_for(lambda e: len(recorder.of(VerdictReady)) == 2)
    assert workflow.wait_until_idle() and workflow.state is State.VERDICT_SHOWN
    assert [record.trigger for record in sink.captures.values()] == ["auto", "auto"]
    assert len(recorder.of(CaptureSaved)) == 2
    assert _only_the_worker_grabbed(camera)


def test_new_reference_banks_are_built_after_the_empty_tray_frame(station, scene):
    """The banks of an item's new references are built while it is placed, but with the
    auto trigger only after the frame taken as the empty tray: built before it, they would
    hold that frame back until the item might already lie in it (and never fire)."""
    grabs_when_loaded = []

    def load():
        grabs_when_loaded.append(camera.grabs)
        return scene.tray, scene.item_mask
    reference = ReferenceImage(f"auto-trigger-{time.time_ns()}", load)
    workflow, recorder, sink, camera, tray = station(references=lambda item: [reference])
    _scan_item(workflow, recorder)
    camera.wait_grabs(3)
    assert grabs_when_loaded and grabs_when_loaded[0] >= 1
    tray.place("item")
    recorder.wait_for(lambda e: isinstance(e, VerdictReady))
    assert workflow.wait_until_idle() and len(grabs_when_loaded) == 2   # bank, shown crop


@pytest.mark.parametrize("auto", [None, AutoTriggerSettings(enabled=False)])
def test_without_auto_trigger_nothing_is_grabbed_until_a_trigger(station, simulator, auto):
    workflow, recorder, sink, camera, tray = station(auto=auto)
    waiting = _scan_item(workflow, recorder)
    assert waiting.message == f"Place item {ITEM} in the tray, then capture."
    tray.place("item")
    time.sleep(0.4)
    assert camera.grabs == 0 and not sink.captures and _dark(simulator)
    assert workflow.state is State.WAITING_FOR_ITEM
    workflow.submit(Trigger(TriggerSource.PEDAL))
    verdict = recorder.wait_for(lambda e: isinstance(e, VerdictReady))
    assert sink.captures[verdict.capture_id].trigger == "pedal" and camera.grabs == 1


def test_a_trigger_during_a_live_view_grab_starts_exactly_one_capture(station, simulator):
    # The item already lies in the tray when its code is scanned: that first frame is taken
    # as the empty tray, so the auto trigger stays quiet and the associate presses Capture.
    workflow, recorder, sink, camera, _ = station(first="item")
    _scan_item(workflow, recorder)
    camera.wait_grabs(5)
    assert not sink.captures
    camera.hold.clear()
    assert camera.holding.wait(10.0)                 # a live-view grab is in progress
    workflow.submit(Trigger(TriggerSource.BUTTON))
    workflow.submit(Trigger(TriggerSource.PEDAL))    # second press: ignored, not queued
    ignored = recorder.wait_for(lambda e: isinstance(e, CommandIgnored))
    assert ignored.state is State.CAPTURING and "not queued" in ignored.reason
    camera.hold.set()
    verdict = recorder.wait_for(lambda e: isinstance(e, VerdictReady))
    assert workflow.wait_until_idle() and workflow.state is State.VERDICT_SHOWN
    assert list(sink.captures) == [verdict.capture_id]
    assert sink.captures[verdict.capture_id].trigger == "button"
    assert len(recorder.of(VerdictReady)) == 1 and _dark(simulator)
    assert _only_the_worker_grabbed(camera)


def test_lights_going_silent_in_live_view_is_a_fault_and_retry_recovers(station, simulator):
    workflow, recorder, sink, camera, tray = station()
    _scan_item(workflow, recorder)
    camera.wait_grabs(3)
    simulator.pty.go_silent()
    fault = recorder.wait_for(lambda e: isinstance(e, Fault))
    assert (fault.kind, fault.for_whom, fault.recoverable) == ("lights", "technician", True)
    assert fault.message.startswith("Lights not answering")
    assert workflow.wait_until_idle() and workflow.state is State.FAULT
    grabs = camera.grabs
    time.sleep(0.2)
    assert camera.grabs == grabs and not sink.captures   # live view stops in a fault
    simulator.pty.resume()
    tray.place("item")                               # placed while the fault was shown
    workflow.submit(Retry())
    verdict = recorder.wait_for(lambda e: isinstance(e, VerdictReady))
    assert sink.captures[verdict.capture_id].trigger == "auto"
    assert workflow.wait_until_idle() and _dark(simulator)


def test_a_camera_gone_in_live_view_is_a_fault_and_retry_resumes_it(station, simulator):
    workflow, recorder, sink, camera, _ = station()
    _scan_item(workflow, recorder)
    camera.wait_grabs(2)
    camera.close()
    fault = recorder.wait_for(lambda e: isinstance(e, Fault))
    assert fault.kind == "camera" and "cable" in fault.message and fault.recoverable
    assert workflow.wait_until_idle() and workflow.state is State.FAULT
    assert _dark(simulator)                          # leaving live view darkens the tray
    camera.open()
    grabs = camera.grabs
    workflow.submit(Retry())
    camera.wait_grabs(grabs + 2)
    assert workflow.state is State.WAITING_FOR_ITEM and not sink.captures


def test_leaving_live_view_without_a_capture_switches_the_lights_off(station, simulator):
    workflow, recorder, _, camera, _ = station()
    _scan_item(workflow, recorder)
    camera.wait_grabs(2)
    assert _lit(simulator)
    workflow.submit(Back())                          # item cancelled
    assert workflow.wait_until_idle() and workflow.state is State.SIGNED_IN
    assert _dark(simulator)


def test_the_camera_is_never_grabbed_by_two_threads(station):
    workflow, recorder, sink, camera, tray = station(
        auto=AutoTriggerSettings(interval_s=0.01, still_frames=1))
    _scan_item(workflow, recorder)
    for round_ in range(1, 4):                       # manual captures amid live view
        camera.wait_grabs(camera.grabs + 2)
        workflow.submit(Trigger())
        recorder.wait_for(lambda e: len(recorder.of(ItemRejected)) == round_)
    tray.place("item")
    recorder.wait_for(lambda e: isinstance(e, VerdictReady))
    assert [record.trigger for record in sink.captures.values()] == ["button"] * 3 + ["auto"]
    assert camera.grabs > 10 and _only_the_worker_grabbed(camera)


def test_after_a_rejection_the_detector_fires_again_only_once_the_item_moved(scene):
    empty = _without_item(scene)
    moved = np.roll(scene.frame, 60, axis=1)
    detector = StillnessDetector(empty, still_frames=2)
    assert [detector.observe(f) for f in (empty, scene.frame, scene.frame)] == [None] * 3
    assert detector.observe(scene.frame) == Trigger(TriggerSource.AUTO)
    detector.rearm_after_motion()                    # the capture was rejected
    assert [detector.observe(scene.frame) for _ in range(5)] == [None] * 5
    assert detector.observe(moved) is None           # repositioned ...
    assert [detector.observe(moved) for _ in range(2)] == [None, Trigger(TriggerSource.AUTO)]


def test_auto_trigger_settings_refuse_nonsense():
    with pytest.raises(ValueError, match="still_frames"):
        AutoTriggerSettings(still_frames=0)
    with pytest.raises(ValueError, match="interval_s"):
        AutoTriggerSettings(interval_s=0)
    assert AutoTriggerSettings().detector(np.zeros((30, 40, 3), np.uint8)).still_frames == 4


def test_close_during_live_view_switches_the_lights_off(station, simulator):
    workflow, recorder, _, camera, _ = station()
    _scan_item(workflow, recorder)
    camera.wait_grabs(2)
    assert _lit(simulator)
    workflow.close()
    assert _dark(simulator)


def test_close_waits_for_a_live_view_grab_in_progress(station, simulator):
    workflow, recorder, _, camera, _ = station()
    _scan_item(workflow, recorder)
    camera.wait_grabs(1)
    camera.hold.clear()                              # the next grab hangs until released
    assert camera.holding.wait(10.0)
    closer = threading.Thread(target=workflow.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive()                         # close() waits for the grab in progress
    camera.hold.set()
    closer.join(10.0)
    assert not closer.is_alive()
    assert camera._inside == 0                       # no grab left to overlap camera.close()
    assert _dark(simulator)
