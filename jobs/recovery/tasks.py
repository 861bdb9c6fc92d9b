"""RQ entry point of an approved site, host or plan failover. The execution itself is written separately; until
it is merged, an approved recovery fails loudly instead of pretending to run."""

from __future__ import annotations

from typing import Any


def run_recovery(approval_id: str, plan: dict[str, Any], kind: str, reply: dict[str, Any],
                 card: dict[str, Any]) -> dict[str, Any]:
    raise NotImplementedError("recexec")
