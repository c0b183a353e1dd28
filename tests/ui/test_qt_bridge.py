"""Events from the workflow's thread arrive in the UI thread, in order; close unsubscribes."""

from __future__ import annotations

import threading

from PyQt6.QtCore import QThread

from ui.qt_bridge import WorkflowBridge


class ThreadedSource:
    """Workflow-like: calls its listeners from a thread of its own, as the workflow does."""

    def __init__(self) -> None:
        self.listeners: list = []
        self.submitted: list = []

    def submit(self, command) -> None:
        self.submitted.append(command)

    def subscribe(self, listener):
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    def emit_from_thread(self, events) -> None:
        def run() -> None:
            for event in events:
                for listener in list(self.listeners):
                    listener(event)
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()


def test_events_cross_into_the_ui_thread_in_order(qtbot, qapp):
    source = ThreadedSource()
    bridge = WorkflowBridge(source)
    received: list = []
    threads: list = []

    def slot(event) -> None:
        received.append(event)
        threads.append(QThread.currentThread() is qapp.thread())
    bridge.workflow_event.connect(slot)
    source.emit_from_thread(list(range(50)))
    assert received == []                        # queued, not called on the source's thread
    qtbot.waitUntil(lambda: len(received) == 50)
    assert received == list(range(50)) and all(threads)
    bridge.submit("command")
    assert source.submitted == ["command"]

    bridge.close()
    assert source.listeners == [] and bridge.closed
    bridge.submit("late")
    assert source.submitted == ["command"]


def test_events_in_flight_when_closed_are_dropped(qtbot):
    source = ThreadedSource()
    bridge = WorkflowBridge(source)
    received: list = []
    bridge.workflow_event.connect(received.append)
    source.emit_from_thread(["a", "b"])
    bridge.close()                               # before the queued events are delivered
    qtbot.wait(50)
    assert received == []


def test_a_client_without_unsubscribe_is_fine(qtbot):
    class Plain:
        def submit(self, command) -> None: ...

        def subscribe(self, listener) -> None:
            return None
    bridge = WorkflowBridge(Plain())
    bridge.close()
    assert bridge.closed
