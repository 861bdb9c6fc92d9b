"""psrpcore's ``ServerRunspacePool`` that deserializes each distinct CREATE_PIPELINE body once.

Why: a fleet-wide call sends the same pipeline to every host, and deserializing the CREATE_PIPELINE CLIXML
(commands, parameters, host information) was about half of a lab process's CPU in bench/fanout.py, where the
lab shares two cores with the client it serves. The body carries no per-call identifier (pipeline and message
ids travel in the PSRP header), and psrpcore only reads the deserialized object (``PowerShell.
FromPSObjectForRemoting``), so one object can back every pipeline with that body. Everything else, the
state machine included, is psrpcore's own code.
"""

from __future__ import annotations

from typing import Any

from psrpcore import ServerRunspacePool
from psrpcore._events import PSRPEvent
from psrpcore._payload import PSRPMessage
from psrpcore.types import PSRPMessageType

_BODIES: dict[bytes, Any] = {}
_MAX_BODIES = 256  # distinct pipelines; a client cannot grow this without bound (dict get/set: GIL-atomic)


class LabRunspacePool(ServerRunspacePool):
    def _process_message(self, message: PSRPMessage) -> PSRPEvent:
        if message.message_type != PSRPMessageType.CreatePipeline:
            return super()._process_message(message)
        key = bytes(message.data)
        known = _BODIES.get(key)
        if known is None:
            event = super()._process_message(message)
            if len(_BODIES) < _MAX_BODIES:
                _BODIES[key] = event._ps_object
            return event
        event = PSRPEvent.create(message.message_type, known, message.runspace_pool_id, message.pipeline_id)
        self._process_CreatePipeline(event)  # type: ignore[arg-type]
        return event
