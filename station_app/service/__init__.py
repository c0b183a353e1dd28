"""The station core's workflow served on a local socket, and the front ends' client.

The core (a system service) owns the devices, models and the inspection workflow; the
operator UI runs in the kiosk session as a separate process and reaches the workflow
through :class:`WorkflowClient`, which has the workflow's ``submit``/``subscribe``
surface. A UI that restarts reconnects and gets a snapshot; the inspection is never
disturbed. Wire format and limits: :mod:`station_app.service.protocol`, docs/protocol.md.
"""

from station_app.service.client import CoreConnection, WorkflowClient, query_status
from station_app.service.protocol import PROTOCOL_VERSION, FramingError, ProtocolError
from station_app.service.server import WorkflowServer

__all__ = ["PROTOCOL_VERSION", "CoreConnection", "FramingError", "ProtocolError",
           "WorkflowClient", "WorkflowServer", "query_status"]
