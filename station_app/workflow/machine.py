"""The inspection state machine: commands in through ``submit``, events out to listeners.

One dispatcher thread takes commands in order and makes every transition, so a state
is never changed from two places and listeners get events in the order they happened.
Slow steps (lights and grab, saving, models, confirmation) run on a single worker
thread and come back to the dispatcher as internal results; a result that arrives after
its step timed out is recognised by its job number and only reported, never acted on.
Every frame is handed to the sink before it is processed, so nothing captured is lost.

Automatic capture (``auto_trigger``): while waiting for the item, the dispatcher starts a
live-view step on the same worker every ``interval_s`` (timed by its own queue wait, real
time: it paces the camera, unlike the state timeouts on the injectable clock), so the
camera and lights are never used by two threads. The step lights the tray, grabs one frame
and shrinks it; the dispatcher feeds the :class:`StillnessDetector`, whose first frame per
item is the empty tray, and starts the capture when it fires, as a ``Trigger(AUTO)`` would.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from drivers.camera import Camera, CameraError
from drivers.errors import DriverError
from drivers.lighting.controller import LightingController
from drivers.scanner.codes import CodeRules, InvalidCode, validate_code
from engines.inspection import CaptureInput, CaptureScores, Inspector, ReferenceImage, Refused
from engines.item_crop import square_item_crop
from engines.item_extraction import ItemExtractor
from engines.taxonomy import DEFECT_TYPES
from station_app.hardware import StationDevices
from station_app.workflow.auto_trigger import (AutoTriggerSettings, StillnessDetector,
                                               shrink_for_live_view)
from station_app.workflow.commands import (PUBLIC_COMMANDS, Back, Command, Confirm, ItemScanned,
                                           ItemTyped, Retry, SignIn, SignOut, Tick, Trigger,
                                           TriggerSource)
from station_app.workflow.events import (CaptureSaved, CommandIgnored, ConfirmationSaved, Event,
                                         Fault, ItemRejected, StateChanged, VerdictReady)
from station_app.workflow.sink import CaptureOutcome, CaptureRecord, CaptureSink, Confirmation
from station_app.workflow.states import State
from station_app.workflow.timeouts import Timeouts

log = logging.getLogger("station_app.workflow")

Listener = Callable[[Event], None]
ReferenceLookup = Callable[[str], Sequence[ReferenceImage]]


# -- results of worker steps (never submitted from outside) --------------------------------

@dataclass(frozen=True)
class _Saved:
    job: int
    capture_id: str
    record: CaptureRecord
    lights_off_error: str = ""


@dataclass(frozen=True)
class _Processed:
    job: int
    capture_id: str
    outcome: CaptureOutcome
    reference_crop: Any = None                  # the first reference's item crop, if any


@dataclass(frozen=True)
class _ConfirmationStored:
    job: int
    capture_id: str


@dataclass(frozen=True)
class _StepFailed:
    job: int
    fault: Fault
    retry: str                                  # capture, save, process or confirm
    record: CaptureRecord | None = None         # a frame not yet in the sink


@dataclass(frozen=True)
class _LiveFrame:
    job: int
    image: Any                                  # shrink_for_live_view of the grabbed frame


@dataclass(frozen=True)
class _LiveViewFailed:
    job: int
    fault: Fault


_STOP = object()
_LIVE_VIEW_DUE = object()                       # the dispatcher's queue wait ran out


def _lights_fault(error: BaseException) -> Fault:
    return Fault("lights", f"Lights not answering: {error}. Check the lighting controller's "
                           "power and cable, then Retry.", "technician")


def _camera_fault(error: BaseException) -> Fault:
    return Fault("camera", f"Camera not delivering frames: {error}. Check the camera's cable "
                           "and power, then Retry.", "technician")


def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def _lighting_record(lights: LightingController) -> dict[str, Any]:
    return {str(channel): {"mode": state.mode.name, "percent": state.percent,
                           "width_us": state.width_us, "delay_us": state.delay_us}
            for channel, state in lights.settings.items()}


@dataclass
class _Session:
    """What the dispatcher remembers about the inspection in progress."""

    operator: str = ""
    item: str = ""
    trigger: str = ""
    capture_id: str = ""
    record: CaptureRecord | None = None         # the frame being processed
    verdict_label: str = ""
    confirmation: Confirmation | None = None
    retry: str = ""                             # the step a Retry re-attempts
    unsaved: CaptureRecord | None = None        # a frame the sink has not taken yet
    detector: StillnessDetector | None = None   # auto trigger; None until the empty tray
    confirmed: int = 0                          # confirmations since sign-in


class InspectionWorkflow:
    """One inspection at a time. Use :meth:`submit` and :meth:`subscribe`; nothing else
    changes what the workflow does."""

    def __init__(self, *, camera: Camera, lights: LightingController, extractor: ItemExtractor,
                 inspector: Inspector, sink: CaptureSink, station_id: str = "station",
                 grab_timeout_ms: int = 5000, timeouts: Timeouts = Timeouts(),
                 clock: Callable[[], float] = time.monotonic,
                 code_rules: CodeRules = CodeRules(),
                 references: ReferenceLookup | None = None,
                 auto_trigger: AutoTriggerSettings | None = None) -> None:
        self._camera = camera
        self._lights = lights
        self._extractor = extractor
        self._inspector = inspector
        self._sink = sink
        self._station_id = station_id
        self._grab_timeout_ms = grab_timeout_ms
        self._timeouts = timeouts
        self._clock = clock
        self._code_rules = code_rules
        self._references = references or (lambda item: ())
        self._auto = auto_trigger if auto_trigger is not None and auto_trigger.enabled else None
        self._preparing = 0                     # generation of the reference prefetch
        self._live_view_running = False         # a live-view step is on the worker
        self._next_live_view_at = 0.0           # time.monotonic() of the next one
        self._live_lights = False               # live view may have left the lights on
        self._last_handled_at = time.monotonic()
        self._state = State.SIGNED_OUT
        self._entered_at = clock()
        self._session = _Session()
        self._job = 0
        self._listeners: list[Listener] = []
        self._listeners_lock = threading.Lock()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workflow-worker")
        self._dispatcher = threading.Thread(target=self._dispatch_forever,
                                            name="workflow-dispatcher", daemon=True)
        self._dispatcher.start()

    @classmethod
    def from_devices(cls, devices: StationDevices, **options: Any) -> InspectionWorkflow:
        """The workflow over the station's opened camera and lighting controller."""
        return cls(camera=devices.camera, lights=devices.lighting.controller, **options)

    # -- public surface ------------------------------------------------------------------

    @property
    def state(self) -> State:
        """The current state, for display; changes only through commands."""
        return self._state

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every event (on the workflow's thread); returns an
        unsubscribe function. A listener that raises is logged, not fatal."""
        with self._listeners_lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._listeners_lock, contextlib.suppress(ValueError):
                self._listeners.remove(listener)
        return unsubscribe

    def submit(self, command: Command) -> None:
        """Queue a command and return at once; its effects arrive as events."""
        if not isinstance(command, PUBLIC_COMMANDS):
            raise TypeError(f"not a workflow command: {command!r}")
        self._enqueue(command)

    def wait_until_idle(self, timeout_s: float = 30.0) -> bool:
        """True once every submitted command and started step has been handled (for tests,
        the headless demo and shutdown; the UI never needs to wait)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout_s)

    def is_alive(self) -> bool:
        """Whether the dispatcher still runs: a dead one leaves commands queued forever,
        which only a restart cures (the service's health check asks)."""
        return self._dispatcher.is_alive()

    @property
    def last_handled_at(self) -> float:
        """``time.monotonic()`` of when the dispatcher last finished handling a queued
        item (a command, Tick included, or a worker step's result): a stalled dispatcher
        shows up as this value no longer advancing."""
        return self._last_handled_at

    def close(self) -> None:
        """Stop the dispatcher, wait for the worker's step in progress (so no grab
        overlaps the owner closing the camera), and switch off lights live view left on;
        the devices stay open (their owner closes them)."""
        self._queue.put(_STOP)
        self._dispatcher.join(timeout=5.0)
        self._worker.shutdown(wait=True, cancel_futures=True)
        if self._live_lights or self._live_view_running:
            self._live_lights = False
            try:
                self._lights.off()
            except (DriverError, OSError) as error:
                log.warning("lights did not switch off when the workflow closed: %s", error)

    # -- queue ---------------------------------------------------------------------------

    def _enqueue(self, item: Any) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(item)

    def _done_one(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def _dispatch_forever(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._live_view_wait_s())
            except queue.Empty:
                item = _LIVE_VIEW_DUE
            if item is _STOP:
                return
            try:
                if item is not _LIVE_VIEW_DUE:
                    self._handle(item)
                self._maybe_start_live_view()
            except Exception:  # a bug must not stop the station; it is logged loudly
                log.exception("workflow failed to handle %r", item)
            finally:
                if item is not _LIVE_VIEW_DUE:
                    self._last_handled_at = time.monotonic()
                    self._done_one()

    def _emit(self, event: Event) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                log.exception("workflow listener %r failed on %r", listener, event)

    def _enter(self, new: State, message: str) -> None:
        old, self._state = self._state, new
        self._entered_at = self._clock()
        if (old is State.WAITING_FOR_ITEM and self._live_lights
                and new not in (State.WAITING_FOR_ITEM, State.ITEM_IDENTIFIED)):
            self._live_lights = False
            if new is not State.CAPTURING:       # a capture switches them off itself
                self._run_on_worker(self._live_lights_off_step, job=None)
        session = self._session
        self._emit(StateChanged(old, new, message, session.item or None,
                                operator=session.operator, confirmed_count=session.confirmed))

    def _ignore(self, command: Any, reason: str) -> None:
        self._emit(CommandIgnored(type(command).__name__, self._state, reason))

    def _start_step(self, state: State, message: str, step: Callable[..., Any],
                    *args: Any) -> None:
        """Enter ``state`` and run ``step`` on the worker; its result comes back queued."""
        self._job += 1
        job = self._job
        self._enter(state, message)
        self._run_on_worker(step, job, *args, job=job)

    def _run_on_worker(self, step: Callable[..., Any], *args: Any, job: int | None) -> None:
        """Run ``step`` on the worker; its result (unless None) comes back queued. A step
        that raises becomes a recoverable fault of ``job`` (None: only logged)."""
        with self._idle:
            self._pending += 1
        future: Future = self._worker.submit(step, *args)

        def deliver(done: Future) -> None:
            if done.cancelled():               # queued when the workflow closed
                self._done_one()
                return
            try:
                result = done.result()
            except BaseException as error:   # a step's own bug: report, stay recoverable
                if job is None:
                    log.error("workflow step %s failed", step.__name__, exc_info=error)
                    result = None
                else:
                    result = _StepFailed(job, Fault("internal", f"Station error: {error!r}. "
                                                    "Retry; if it repeats, call a technician.",
                                                    "technician"), retry="")
            if result is not None:
                self._enqueue(result)
            self._done_one()
        future.add_done_callback(deliver)

    # -- live view (automatic capture) ----------------------------------------------------

    def _live_view_wanted(self) -> bool:
        return self._auto is not None and self._state is State.WAITING_FOR_ITEM

    def _live_view_wait_s(self) -> float | None:
        """How long the dispatcher may wait for a command before the next live-view frame
        is due (None: no live view now, wait for commands only)."""
        if not self._live_view_wanted() or self._live_view_running:
            return None
        return max(0.0, self._next_live_view_at - time.monotonic())

    def _maybe_start_live_view(self) -> None:
        if not self._live_view_wanted() or self._live_view_running:
            return
        now = time.monotonic()
        if now < self._next_live_view_at:
            return
        assert self._auto is not None
        self._next_live_view_at = now + self._auto.interval_s
        self._job += 1      # only the newest live-view frame counts; no step runs in this state
        self._live_view_running = self._live_lights = True
        self._run_on_worker(self._live_view_step, self._job, job=None)

    def _on_live_view(self, result: _LiveFrame | _LiveViewFailed) -> None:
        self._live_view_running = False
        if result.job != self._job or self._state is not State.WAITING_FOR_ITEM:
            return   # a capture started meanwhile (its trigger wins), or the state moved on
        if isinstance(result, _LiveViewFailed):
            self._fault(result.fault, "live")
            return
        assert self._auto is not None
        session = self._session
        if session.detector is None:
            session.detector = self._auto.detector(result.image)   # the empty tray
            session.detector.observe(result.image)
            self._prepare_references(session.item)
            return
        try:
            fired = session.detector.observe(result.image)
        except ValueError:   # the camera's region changed: start again from this frame
            log.warning("live-view frame size changed; taking it as the new empty tray")
            session.detector = self._auto.detector(result.image)
            return
        if fired is not None:
            session.trigger = TriggerSource.AUTO.value
            self._start_capture()

    def _waiting_message(self, item: str) -> str:
        if self._auto is not None:
            return (f"Place item {item} in the tray; the capture starts when it lies still "
                    "(or press Capture).")
        return f"Place item {item} in the tray, then capture."

    # -- dispatch ------------------------------------------------------------------------

    def _handle(self, item: Any) -> None:
        if isinstance(item, (_LiveFrame, _LiveViewFailed)):
            self._on_live_view(item)
            return
        if isinstance(item, (_Saved, _Processed, _ConfirmationStored, _StepFailed)):
            self._handle_result(item)
            return
        handler = {SignIn: self._on_sign_in, SignOut: self._on_sign_out,
                   ItemScanned: self._on_item_code, ItemTyped: self._on_item_code,
                   Trigger: self._on_trigger, Confirm: self._on_confirm, Back: self._on_back,
                   Retry: self._on_retry, Tick: self._on_tick}[type(item)]
        handler(item)

    def _on_sign_in(self, command: SignIn) -> None:
        if self._state is not State.SIGNED_OUT:
            self._ignore(command, f"{self._session.operator} is signed in; sign out first")
            return
        badge = command.badge.strip()
        if not badge:
            self._ignore(command, "empty badge: scan the badge again")
            return
        self._session = _Session(operator=badge)
        self._enter(State.SIGNED_IN, "Signed in: scan the item's barcode.")

    def _on_sign_out(self, command: SignOut) -> None:
        if self._state is State.SIGNED_OUT:
            self._ignore(command, "nobody is signed in")
        elif self._state.busy:
            self._ignore(command, "wait until the station finishes this step")
        elif self._session.unsaved is not None:
            self._ignore(command, "a frame is not stored yet: Retry, or call a technician")
        else:
            self._sign_out("Signed out.")

    def _sign_out(self, message: str) -> None:
        self._session = _Session()
        self._enter(State.SIGNED_OUT, message)

    def _on_item_code(self, command: ItemScanned | ItemTyped) -> None:
        if self._state not in (State.SIGNED_IN, State.WAITING_FOR_ITEM):
            reason = ("sign in first" if self._state is State.SIGNED_OUT
                      else "finish the current item first")
            self._ignore(command, reason)
            return
        try:
            code = validate_code(command.code.strip(), self._code_rules)
        except InvalidCode as error:
            self._ignore(command, f"not an item identifier ({error}): scan or type it again")
            return
        self._session.item = code
        self._session.detector = None   # the next live-view frame is this item's empty tray
        self._job += 1                  # and not one grabbed before the code was scanned
        self._enter(State.ITEM_IDENTIFIED, f"Item {code}.")
        self._enter(State.WAITING_FOR_ITEM, self._waiting_message(code))
        self._preparing += 1            # a prefetch for an earlier code stops
        if self._auto is None:
            self._prepare_references(code)
        # With the auto trigger, only after the empty-tray frame (_on_live_view): run
        # before it, the banks would delay that frame until the item may already lie there.

    def _on_trigger(self, command: Trigger) -> None:
        if self._state is State.WAITING_FOR_ITEM:
            self._session.trigger = command.source.value
            self._start_capture()
        elif self._state.busy:
            self._ignore(command, f"already {self._state.value}; trigger ignored, not queued")
        elif self._state in (State.SIGNED_OUT, State.SIGNED_IN):
            self._ignore(command, "scan the item before capturing")
        else:
            self._ignore(command, f"no capture in state {self._state.value}")

    def _start_capture(self) -> None:
        session = self._session
        self._preparing += 1           # a reference prefetch stops after its current bank
        self._start_step(State.CAPTURING, "Capturing: keep the tray still.", self._capture_step,
                         session.operator, session.item, session.trigger)

    def _on_confirm(self, command: Confirm) -> None:
        if self._state is not State.VERDICT_SHOWN:
            self._ignore(command, "there is no verdict to confirm")
            return
        unknown = sorted(set(command.defect_types) - set(DEFECT_TYPES))
        if unknown:
            self._ignore(command, f"unknown defect types {unknown}; choose from "
                                  f"{', '.join(DEFECT_TYPES)}")
            return
        session = self._session
        session.confirmation = Confirmation(session.operator, command.agree,
                                            command.severity.value, tuple(command.defect_types),
                                            session.verdict_label, _utc_now())
        self._start_confirm()

    def _start_confirm(self) -> None:
        session = self._session
        self._start_step(State.CONFIRMED, "Saving your confirmation.", self._confirm_step,
                         session.capture_id, session.confirmation)

    def _on_back(self, command: Back) -> None:
        state = self._state
        if state is State.WAITING_FOR_ITEM:
            self._session.item = ""
            self._enter(State.SIGNED_IN, "Item cancelled: scan the item's barcode.")
        elif state is State.VERDICT_SHOWN:
            self._enter(State.WAITING_FOR_ITEM,
                        f"Capture kept unconfirmed; place item {self._session.item} and "
                        "capture again.")
        elif state is State.FAULT:
            if self._session.unsaved is not None:
                self._ignore(command, "a frame is not stored yet: Retry, or call a technician")
                return
            self._session.retry = ""
            self._back_to_item("Fault left; ")
        elif state.busy:
            self._ignore(command, "wait until the station finishes this step")
        else:
            self._ignore(command, "nothing to go back to; sign out to leave")

    def _back_to_item(self, prefix: str) -> None:
        if self._session.item:
            self._enter(State.WAITING_FOR_ITEM,
                        f"{prefix}place item {self._session.item} in the tray and capture.")
        else:
            self._enter(State.SIGNED_IN, f"{prefix}scan the item's barcode.")

    def _on_retry(self, command: Retry) -> None:
        if self._state is not State.FAULT or not self._session.retry:
            self._ignore(command, "nothing to retry")
            return
        session = self._session
        step, session.retry = session.retry, ""
        if step == "capture":
            self._start_capture()
        elif step == "save":
            self._start_step(State.CAPTURING, "Storing the frame again.", self._save_step,
                             session.unsaved, "")
        elif step == "process":
            self._start_processing()
        elif step == "confirm":
            self._start_confirm()
        elif step == "live":
            self._enter(State.WAITING_FOR_ITEM, self._waiting_message(session.item))

    def _on_tick(self, command: Tick) -> None:
        limit = self._timeouts.limit(self._state)
        now = self._clock() if command.now is None else command.now
        if limit is None or now - self._entered_at < limit:
            return
        state, session = self._state, self._session
        minutes = f"{limit / 60:.0f} min" if limit >= 120 else f"{limit:.0f} s"
        if state is State.SIGNED_IN:
            self._sign_out(f"Signed out after {minutes} without activity.")
        elif state is State.WAITING_FOR_ITEM:
            session.item = ""
            self._enter(State.SIGNED_IN, f"No capture within {minutes}: scan the item again.")
        elif state is State.VERDICT_SHOWN:
            session.item = ""
            self._enter(State.SIGNED_IN, f"Verdict not confirmed within {minutes}; the "
                                         "capture is kept unconfirmed. Scan the next item.")
        elif state.busy:
            self._job += 1   # the late result of the hung step is only reported
            step = {State.CAPTURING: "save" if session.unsaved else "capture",
                    State.PROCESSING: "process", State.CONFIRMED: "confirm"}[state]
            what = {State.CAPTURING: "Capture (lights and camera)",
                    State.PROCESSING: "Processing (models)",
                    State.CONFIRMED: "Saving the confirmation"}[state]
            self._fault(Fault("timeout", f"{what} did not finish within {minutes}: check the "
                                         "station's devices, then Retry.", "technician",
                              capture_id=session.capture_id or None), step)
        elif state is State.FAULT:
            if session.unsaved is not None:
                self._entered_at = now   # never walk away from a frame not yet stored
                return
            self._sign_out(f"Signed out after {minutes} in a fault; sign in to continue.")

    def _fault(self, fault: Fault, retry: str) -> None:
        self._session.retry = retry if fault.recoverable else ""
        self._emit(fault)
        self._enter(State.FAULT, fault.message)

    # -- results from the worker ---------------------------------------------------------

    def _handle_result(self, result: Any) -> None:
        session = self._session
        if isinstance(result, _Saved):
            # Reported even when late: the UI must know every frame the sink holds.
            self._emit(CaptureSaved(result.capture_id, result.record.item_identifier))
            if result.job != self._job:
                return
            session.unsaved = None
            session.capture_id, session.record = result.capture_id, result.record
            if result.lights_off_error:
                self._fault(Fault("lights", f"Lights did not switch off: "
                                  f"{result.lights_off_error}. The frame is saved; check the "
                                  "lighting controller, then Retry to continue.", "technician",
                                  capture_id=result.capture_id), "process")
                return
            self._start_processing()
            return
        if result.job != self._job:
            log.warning("ignoring a late result after its step timed out: %r", result)
            return
        if isinstance(result, _StepFailed):
            if result.record is not None:
                session.unsaved = result.record
            self._fault(result.fault, result.retry)
        elif isinstance(result, _Processed):
            self._on_processed(result)
        elif isinstance(result, _ConfirmationStored):
            self._emit(ConfirmationSaved(result.capture_id))
            session.confirmed += 1
            session.item, session.capture_id, session.record = "", "", None
            session.confirmation, session.verdict_label = None, ""
            self._enter(State.SIGNED_IN, "Ready: scan the next item.")

    def _start_processing(self) -> None:
        session = self._session
        self._start_step(State.PROCESSING, "Checking the item.", self._process_step,
                         session.capture_id, session.record)

    def _on_processed(self, result: _Processed) -> None:
        outcome = result.outcome
        if outcome.kind == "rejected":
            issues = tuple((issue.code, issue.message) for issue in outcome.issues)
            message = " ".join(issue.message for issue in outcome.issues)
            self._emit(ItemRejected(result.capture_id, issues, message))
            if self._session.detector is not None:   # capture again once moved and settled
                self._session.detector.rearm_after_motion()
            self._enter(State.WAITING_FOR_ITEM, message)
            return
        scores = outcome.scores
        assert scores is not None and scores.verdict is not None and outcome.extracted is not None
        verdict = scores.verdict
        self._session.verdict_label = verdict.label
        self._emit(VerdictReady(result.capture_id, verdict.label, verdict.fused_score,
                                verdict.likely_types, verdict.reason, verdict.heatmap,
                                outcome.extracted.tray_image, dict(outcome.timings_ms),
                                item_crop=outcome.extracted.crop,
                                reference_crop=result.reference_crop))
        self._enter(State.VERDICT_SHOWN, f"{verdict.label}: confirm or correct the verdict.")

    # -- worker steps (run on the worker thread; touch no workflow state) -------------------

    def _capture_step(self, job: int, operator: str, item: str, trigger: str) -> Any:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        try:
            self._lights.on()
        except (DriverError, OSError) as error:
            with contextlib.suppress(DriverError, OSError):
                self._lights.off()
            return _StepFailed(job, _lights_fault(error), retry="capture")
        timings["lights_on"] = (time.perf_counter() - started) * 1000.0
        started = time.perf_counter()
        try:
            frame = self._camera.grab(self._grab_timeout_ms)
        except (CameraError, DriverError, OSError) as error:
            with contextlib.suppress(DriverError, OSError):
                self._lights.off()
            return _StepFailed(job, _camera_fault(error), retry="capture")
        timings["grab"] = (time.perf_counter() - started) * 1000.0
        lighting = _lighting_record(self._lights)
        lights_off_error = ""
        started = time.perf_counter()
        try:
            self._lights.off()
        except (DriverError, OSError) as error:
            lights_off_error = str(error)
        timings["lights_off"] = (time.perf_counter() - started) * 1000.0
        record = CaptureRecord(self._station_id, operator, item, trigger, _utc_now(), frame,
                               lighting, timings)
        return self._save_step(job, record, lights_off_error)

    def _live_view_step(self, job: int) -> _LiveFrame | _LiveViewFailed:
        """Lights on (every frame: a controller that stopped answering or was power-cycled
        shows up here, not only at the capture), one frame, shrunk. Never raises, so the
        dispatcher always learns that the step ended."""
        try:
            try:
                self._lights.on()
            except (DriverError, OSError) as error:
                return _LiveViewFailed(job, _lights_fault(error))
            try:
                frame = self._camera.grab(self._grab_timeout_ms)
            except (CameraError, DriverError, OSError) as error:
                return _LiveViewFailed(job, _camera_fault(error))
            return _LiveFrame(job, shrink_for_live_view(frame.rgb))
        except Exception as error:   # a step's own bug: report, stay recoverable
            return _LiveViewFailed(job, Fault("internal", f"Live view failed: {error!r}. "
                                              "Retry; if it repeats, call a technician.",
                                              "technician"))

    def _live_lights_off_step(self) -> None:
        """After live view, without a capture: back to dark, as after every capture."""
        try:
            self._lights.off()
        except (DriverError, OSError) as error:
            log.warning("lights did not switch off after live view: %s", error)

    def _prepare_references(self, item: str) -> None:
        """Queue the reference prefetch of ``item``; it runs until the next scan or capture
        moves ``_preparing`` on."""
        self._run_on_worker(self._prepare_references_step, item, self._preparing, job=None)

    def _prepare_references_step(self, item: str, generation: int) -> None:
        """While the associate places the item: build the pose banks of its references
        that the station has not seen (16 pose crops through the trunk per reference), so
        the verdict does not wait for them. The worker runs one step at a time, so a
        capture or a newly scanned item stops this after the bank in hand (about a third
        of a second here); processing builds what is left. Failures are only logged:
        processing looks the references up again and reports what still fails."""
        started, built = time.perf_counter(), 0
        try:
            references = tuple(self._references(item))
        except Exception as error:
            log.warning("could not look up the references of item %s ahead of the capture "
                        "(%s); the capture will try again", item, error)
            return
        for reference in references:
            if generation != self._preparing:
                break
            try:
                built += self._inspector.prepare_references([reference])
            except Exception as error:
                log.warning("could not prepare reference %s of item %s ahead of the capture "
                            "(%s); the capture will try again", reference.identity, item,
                            error)
        if built:
            log.debug("item %s: %d reference bank(s) built ahead of the capture in %.0f ms",
                      item, built, (time.perf_counter() - started) * 1000.0)

    def _save_step(self, job: int, record: CaptureRecord, lights_off_error: str) -> Any:
        started = time.perf_counter()
        try:
            capture_id = self._sink.save(record)
        except Exception as error:  # any store failure: keep the frame in memory, retry
            return _StepFailed(job, Fault("storage", f"Could not store the frame: {error}. "
                                          "Check the disk, then Retry; the frame is kept "
                                          "until it is stored.", "technician"),
                               retry="save", record=record)
        # Measured after the save, so it reaches the stored result but not capture.json.
        record.timings_ms["store_frame"] = (time.perf_counter() - started) * 1000.0
        return _Saved(job, capture_id, record, lights_off_error)

    def _process_step(self, job: int, capture_id: str, record: CaptureRecord) -> Any:
        started = time.perf_counter()
        references: tuple[ReferenceImage, ...] = ()
        try:
            extracted = self._extractor.from_frame(record.frame.rgb)
            timings = {**record.timings_ms, **extracted.timings_ms}
            if not extracted.accepted:
                outcome = CaptureOutcome("rejected", extracted, None, tuple(extracted.issues),
                                         timings_ms=timings)
            else:
                references = tuple(self._references(record.item_identifier))
                result = self._inspector.inspect(CaptureInput(extracted.tray_image,
                                                              extracted.mask, references))
                outcome = self._outcome(extracted, result, timings)
        except Exception as error:  # runtime, model or preprocessing failure
            log.exception("processing capture %s failed", capture_id)
            message = f"{type(error).__name__}: {error}"
            with contextlib.suppress(Exception):
                self._sink.record_outcome(capture_id, CaptureOutcome("failed", error=message))
            return _StepFailed(job, Fault("model", f"Processing failed ({message}). The frame "
                                          "is saved; Retry, and if it repeats call a "
                                          "technician.", "technician", capture_id=capture_id),
                               retry="process")
        outcome.timings_ms["processing_total"] = (time.perf_counter() - started) * 1000.0
        started = time.perf_counter()
        try:
            self._sink.record_outcome(capture_id, outcome)
        except Exception as error:
            return _StepFailed(job, Fault("storage", f"Could not store the result: {error}. "
                                          "Check the disk, then Retry.", "technician",
                                          capture_id=capture_id), retry="process")
        # For the verdict's figures only: the stored result cannot hold its own storing time.
        outcome.timings_ms["store_result"] = (time.perf_counter() - started) * 1000.0
        reference_crop = None
        if outcome.kind == "scored" and references:
            reference_crop = self._reference_crop(references[0])
        return _Processed(job, capture_id, outcome, reference_crop)

    @staticmethod
    def _reference_crop(reference: ReferenceImage) -> Any:
        """The reference's item crop for the screen; a reference that cannot be read
        costs the picture, never the verdict."""
        try:
            tray_image, mask = reference.load()
            return square_item_crop(tray_image, mask)[0]
        except Exception:
            log.warning("could not cut the reference crop of %s", reference.identity,
                        exc_info=True)
            return None

    @staticmethod
    def _outcome(extracted: Any, result: CaptureScores | Refused,
                 timings: dict[str, float]) -> CaptureOutcome:
        timings = {**timings, **result.timings_ms}
        if isinstance(result, Refused):
            return CaptureOutcome("rejected", extracted, None, result.issues, timings_ms=timings)
        if result.verdict is None:
            raise RuntimeError("the inspector has no decision thresholds, so no verdict")
        return CaptureOutcome("scored", extracted, result, timings_ms=timings)

    def _confirm_step(self, job: int, capture_id: str, confirmation: Confirmation) -> Any:
        try:
            self._sink.confirm(capture_id, confirmation)
        except Exception as error:
            return _StepFailed(job, Fault("storage", f"Could not store the confirmation: "
                                          f"{error}. Check the disk, then Retry.", "technician",
                                          capture_id=capture_id), retry="confirm")
        return _ConfirmationStored(job, capture_id)

