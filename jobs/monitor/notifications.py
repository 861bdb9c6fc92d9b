"""Notifications the alert engine emits: everything a message needs, no Slack code.

The installed alert poster (`jobs.ports.AlertPoster`) renders and paces them. Rows beyond `max_inline_rows`
travel in `attachment_rows` for an attached file: Slack allows 50 blocks per message and rejects block
text around 13k characters (reference/slack.md §2 "Length and Block Kit limits"), so 40 one-line rows
plus header, summary and actions stay inside both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum

from jobs import units
from jobs.monitor.rules import AlertRow


class NotificationKind(StrEnum):
    POST_GROUP = "post_group"  # new message in `channel`
    UPDATE_GROUP = "update_group"  # chat.update of `message_ref` (VMs joined/left)
    RESOLVE = "resolve"  # everything in the group cleared: thread reply (and final update)
    REPEAT = "repeat"  # unchanged and unacknowledged for repeat_interval (or back after a snooze)


@dataclass(frozen=True)
class Notification:
    kind: NotificationKind
    group_key: str  # the message's key: pass it back to set_message_ref / ack / snooze
    channel: str
    severity: str
    title: str
    conditions: list[str]
    mention: str | None
    rows: list[AlertRow]  # inline rows (at most max_inline_rows)
    vm_count: int
    host_count: int
    attachment_rows: list[AlertRow] | None = None  # the full list, when rows were cut
    resolved_rows: list[AlertRow] = field(default_factory=list)  # left the group since the last notice
    muted_count: int = 0  # firing but silenced / inhibited / suppressed
    message_ref: dict | None = None  # what the poster stored after posting (channel, ts)
    at: float = 0.0  # when the engine built it (epoch seconds of the sweep or tick)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["kind"] = self.kind.value
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Notification:
        d = dict(data)
        d["kind"] = NotificationKind(d["kind"])
        for name in ("rows", "resolved_rows"):
            d[name] = [AlertRow.from_dict(r) for r in d.get(name) or []]
        if d.get("attachment_rows") is not None:
            d["attachment_rows"] = [AlertRow.from_dict(r) for r in d["attachment_rows"]]
        return cls(**d)


def sort_rows(rows: list[AlertRow]) -> list[AlertRow]:
    return sorted(rows, key=lambda r: (r.host, r.vm, r.condition))


def counts(rows: list[AlertRow]) -> tuple[int, int]:
    """(distinct VMs, distinct hosts) named by the rows; host alerts name a host, not a VM."""
    vms = {(r.host.lower(), r.vm.lower()) for r in rows if r.vm}
    hosts = {r.host.lower() for r in rows}
    return len(vms), len(hosts)


def title_for(conditions: list[str], scopes: list[str], rows: list[AlertRow], storm: bool) -> str:
    vm_count, host_count = counts(rows)
    if storm or len(conditions) > 1:
        return (f"{units.plural(vm_count, 'VM')} on {units.plural(host_count, 'host')}: "
                f"{', '.join(sorted(set(conditions)))}")
    scope = ", ".join(sorted(set(scopes)))
    if conditions and conditions[0] == "host_unreachable":
        return f"{units.plural(host_count, 'host')} unreachable in {scope}"
    return (f"{conditions[0] if conditions else 'alert'} in {scope}: {units.plural(vm_count, 'VM')} on "
            f"{units.plural(host_count, 'host')}")


def build(
    kind: NotificationKind, key: str, meta: dict, rows: list[AlertRow], *, max_inline: int,
    resolved: list[AlertRow] | None = None, muted: int = 0, at: float = 0.0,
) -> Notification:
    """A notification for message `key` described by `meta` (channel, severity, groups, ...)."""
    ordered = sort_rows(rows)
    named = ordered if ordered or kind != NotificationKind.RESOLVE else sort_rows(resolved or [])
    vm_count, host_count = counts(named)
    inline, attach = ordered[:max_inline], (ordered if len(ordered) > max_inline else None)
    resolved_sorted = sort_rows(resolved or [])
    if kind == NotificationKind.RESOLVE and not ordered and len(resolved_sorted) > max_inline:
        attach = resolved_sorted  # a storm's resolve names every VM too, in the file
        resolved_sorted = resolved_sorted[:max_inline]
    return Notification(
        kind=kind, group_key=key, channel=meta["channel"], severity=meta["severity"],
        title=title_for(meta["conditions"], meta["scopes"], named, meta.get("storm", False)),
        conditions=sorted(set(meta["conditions"])), mention=meta.get("mention"), rows=inline,
        vm_count=vm_count, host_count=host_count, attachment_rows=attach, resolved_rows=resolved_sorted,
        muted_count=muted, message_ref=meta.get("ref"), at=at,
    )
