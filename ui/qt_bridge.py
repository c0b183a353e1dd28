"""The workflow's events, delivered into the Qt UI thread.

The workflow (in process, or ``WorkflowClient`` over the core's socket) calls its
listeners on a background thread; widgets may only be touched from the UI thread. The
bridge's listener does nothing but emit a signal, and a queued connection carries the
event into the UI thread's event loop, in order. Commands go the other way through
:meth:`WorkflowBridge.submit`, which only queues them: nothing here ever waits.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Protocol

from PyQt6.QtCore import QObject, Qt, pyqtSignal, pyqtSlot

log = logging.getLogger("ui.qt_bridge")


class WorkflowSurface(Protocol):
    """What the UI needs of a workflow: the in-process one and the socket client both."""

    def submit(self, command: Any) -> None: ...

    def subscribe(self, listener: Callable[[Any], None]) -> Callable[[], None] | None: ...


class WorkflowBridge(QObject):
    """Subscribes to ``workflow`` and re-emits each event as :attr:`workflow_event` in the UI
    thread. :meth:`close` unsubscribes; events still in flight are dropped."""

    workflow_event = pyqtSignal(object)
    _arrived = pyqtSignal(object)

    def __init__(self, workflow: WorkflowSurface, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._workflow = workflow
        self._closed = threading.Event()
        # Queued: the slot runs in this object's (the UI) thread, whoever emits.
        self._arrived.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._unsubscribe = workflow.subscribe(self._listen)

    def submit(self, command: Any) -> None:
        """Hand a command to the workflow (returns at once; effects arrive as events)."""
        if self._closed.is_set():
            log.warning("command %r after the bridge closed: dropped", command)
            return
        self._workflow.submit(command)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        if callable(self._unsubscribe):
            try:
                self._unsubscribe()
            except Exception:   # a client whose connection is already gone
                log.debug("unsubscribing from the workflow failed", exc_info=True)

    # -- threads ---------------------------------------------------------------------------

    def _listen(self, event: Any) -> None:
        """Runs on the workflow's thread: only hand the event over."""
        if self._closed.is_set():
            return
        try:
            self._arrived.emit(event)
        except RuntimeError:    # the Qt object is gone (window closed during the event)
            self._closed.set()

    @pyqtSlot(object)
    def _deliver(self, event: Any) -> None:
        if not self._closed.is_set():
            self.workflow_event.emit(event)
