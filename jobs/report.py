"""``Report``: the plain, JSON-able result of an inventory operation (rows per host, per-host errors)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

Cell = str | int | float | bool | None | list[Any]


@dataclass
class Report:
    kind: str
    columns: list[str]
    rows: list[dict[str, Cell]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    hosts_ok: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "columns": list(self.columns), "rows": [dict(r) for r in self.rows],
                "errors": [dict(e) for e in self.errors], "hosts_ok": list(self.hosts_ok)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        return cls(kind=str(data["kind"]), columns=list(data["columns"]), rows=[dict(r) for r in data["rows"]],
                   errors=[dict(e) for e in data.get("errors", [])], hosts_ok=list(data.get("hosts_ok", [])))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=False)

    @classmethod
    def from_json(cls, text: str) -> Report:
        return cls.from_dict(json.loads(text))
