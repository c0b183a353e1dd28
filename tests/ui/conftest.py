"""A real station for the operator window: pypylon's emulated camera over the synthetic
station frames, lighting and scanner simulators on pseudo-terminals, the bundled models
and a capture store in a temporary folder (as ``station-app demo`` builds it)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

import pytest

from station_app.commands.emulator_frames import ensure_emulator_frames
from station_app.config import load_config
from station_app.workflow import SignIn, State, StateChanged


@pytest.fixture(scope="session")
def emulator_frames(tmp_path_factory) -> Path:
    return ensure_emulator_frames(tmp_path_factory.mktemp("ui_frames") / "emulator-frames")


def write_station_config(folder: Path, extra: str = "") -> Path:
    path = folder / "station.yaml"
    path.write_text(f"data:\n  root: {folder / 'data'}\n  min_free_gb: 0.1\n{extra}")
    return path


@pytest.fixture(scope="module")
def station(tmp_path_factory, emulator_frames):
    """One opened station per test module (opening loads the models)."""
    from station_app.station import open_station

    folder = tmp_path_factory.mktemp("ui_station")
    config = load_config(write_station_config(folder))
    opened = open_station(config, emulator_frames, folder / "captures")
    yield opened
    opened.close()


class SurfaceOnly:
    """Only what a front end may use of a workflow, so a test fails if the window
    reaches for anything else (state, internals)."""

    __slots__ = ("submit", "subscribe")

    def __init__(self, workflow: Any) -> None:
        self.submit = workflow.submit
        self.subscribe = workflow.subscribe


class EventLog:
    """The test's own subscription: every event the workflow emitted, thread-safe."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        with self._lock:
            return [event for event in self.events if isinstance(event, kind)]

    def first(self, predicate: Callable[[Any], bool]) -> Any:
        with self._lock:
            return next((event for event in self.events if predicate(event)), None)


class ScriptedCore:
    """A workflow-like front-end client (what ``WorkflowClient`` offers): commands are
    recorded, events are whatever the test sends, from a thread of its own."""

    def __init__(self) -> None:
        self.commands: list = []
        self.listeners: list = []

    def submit(self, command) -> None:
        self.commands.append(command)
        if isinstance(command, SignIn):
            self.send(StateChanged(State.SIGNED_OUT, State.SIGNED_IN, "Signed in."))

    def subscribe(self, listener):
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    def send(self, *events) -> None:
        """Deliver events from another thread, as the workflow and the client do."""
        thread = threading.Thread(target=lambda: [listen(event) for event in events
                                                 for listen in list(self.listeners)])
        thread.start()
        thread.join()
