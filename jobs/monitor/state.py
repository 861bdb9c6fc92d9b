"""Alert state in Redis: dedup, debounce, groups, waits, repeats, silences, acks (Alertmanager-like, §C).

`AlertEngine.ingest(observations, now)` may run in any worker: one call per host sweep (or a whole sweep,
or none at all to just run the timers). State lives under `prefix` in Redis and a Redis lock serialises
callers, so two workers never interleave a read-modify-write of the same alert or group.

Keys (p = prefix):
  p:down               hash short host -> since          hosts seen unreachable (inhibition source)
  p:silences           hash id -> silence                vm / host / group matchers with an end time
  p:alerts:<host>      hash fingerprint -> alert record  per host, so one host's sweep reads only its own
  p:groups             hash group key -> group meta      (condition, site|host); `msg` once posted
  p:grows:<group>      hash host -> that host's alerts   every firing alert of the host in the group
  p:gresolved:<group>  list of rows resolved since the last notice
  p:msgs               hash message key -> message meta  one Slack message: one group, or a storm of groups
  p:dirty              set of groups whose membership changed since their message was last written
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import redis

from jobs.keys import ALERTS_PREFIX
from jobs.monitor.groups import GroupContents, load_hash, text
from jobs.monitor.muting import Mutes
from jobs.monitor.notifications import Notification, NotificationKind, build
from jobs.monitor.records import Contribution, contributions, members_hash, next_records, signature
from jobs.monitor.rules import (
    AlertRow,
    AlertRules,
    Finding,
    HostObservation,
    ReplicaObservation,
    Severity,
    evaluate,
    route,
    short_host,
)
from jobs.monitor.silences import SilenceStore

Observation = ReplicaObservation | HostObservation


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


@dataclass
class _Snapshot:
    down: set[str]  # short names of hosts seen unreachable
    silences: dict[str, dict]
    groups: dict[str, dict]
    msgs: dict[str, dict]
    dirty: set[str]
    old: dict[str, dict[str, dict]]  # host -> fingerprint -> record, for the hosts in this ingest


class AlertEngine:
    def __init__(
        self, client: redis.Redis, prefix: str = ALERTS_PREFIX, rules: AlertRules | None = None,
        lock_timeout_s: float = 60.0, lock_wait_s: float = 30.0,
    ) -> None:
        self._r = client
        self._p = prefix
        self.rules = rules or AlertRules()
        self._lock_timeout = lock_timeout_s
        self._lock_wait = lock_wait_s
        self._contents = GroupContents(client, prefix)
        self._silences = SilenceStore(client, prefix)

    # ---- public API ---------------------------------------------------------------------------

    def ingest(self, observations: Sequence[Observation], now: datetime) -> list[Notification]:
        """Fold one sweep's observations (any subset of hosts) into the state; return what to send."""
        ts = now.timestamp()
        replicas = [o for o in observations if isinstance(o, ReplicaObservation)]
        hosts = [o for o in observations if isinstance(o, HostObservation)]
        covered = self._covered(replicas, hosts)
        with self._locked():
            snap = self._read(hosts, covered, ts)
            findings = evaluate(replicas, hosts, now, self.rules)
            reachable = {h.host: h.reachable for h in hosts}
            by_host: dict[str, list[Finding]] = defaultdict(list)
            for f in findings:
                by_host[f.row.host].append(f)
            pipe = self._r.pipeline(transaction=False)
            for host in covered:
                snap.dirty |= self._ingest_host(
                    pipe, host, snap.old[host], by_host[host], reachable.get(host, True), snap, ts
                )
            pipe.execute()
            return self._evaluate(snap, ts)

    def tick(self, now: datetime) -> list[Notification]:
        """Run the timers (group wait, group interval, repeat) without new observations."""
        return self.ingest([], now)

    def set_message_ref(self, message_key: str, ref: dict) -> bool:
        """The poster stores where it posted (channel, ts) so later notifications can update that message."""
        return self._edit_message(message_key, lambda m: m.__setitem__("ref", ref))

    def ack(self, message_key: str, user: str, now: datetime) -> bool:
        """Stop repeats for this message until it resolves."""
        return self._edit_message(message_key, lambda m: m.__setitem__("acked", {"by": user, "at": now.timestamp()}))

    def snooze(self, message_key: str, duration_s: float, user: str, now: datetime) -> list[str]:
        """Silence every group of this message for `duration_s`."""
        raw = self._r.hget(self._k("msgs"), message_key)
        if raw is None:
            return []
        groups = json.loads(raw)["groups"]
        return [self.silence("group", g, duration_s, now, user, reason="snoozed") for g in groups]

    def silence(self, kind: str, target: str, duration_s: float, now: datetime, by: str, reason: str = "") -> str:
        """Mute alerts of a VM, a host or a group (`kind` vm|host|group) until now + duration."""
        return self._silences.add(kind, target, duration_s, now, by, reason)

    def unsilence(self, silence_id: str) -> bool:
        return self._silences.remove(silence_id)

    def silences(self, now: datetime) -> dict[str, dict]:
        return self._silences.active(now.timestamp())

    def current(self, note: Notification) -> Notification:
        """`note` as it should read when sent: rows muted since it was built (while the poster waited its channel's
        turn) are left out; none are added (the next review does that). Silences expire as of its build time."""
        if note.kind == NotificationKind.RESOLVE:
            return note
        with self._locked():
            pipe = self._r.pipeline(transaction=False)
            pipe.hget(self._k("msgs"), note.group_key)
            pipe.hkeys(self._k("down"))
            pipe.hgetall(self._k("groups"))
            raw, down, groups = pipe.execute()
            if raw is None:  # resolved and forgotten meanwhile: the next notification says so
                return note
            meta = json.loads(raw)
            mutes = self._contents.mutes(load_hash(groups), {text(h) for h in down}, self._silences.active(note.at))
            shown = {row.fingerprint for row in self._contents.rows(meta["groups"], mutes)[0]}
            full = note.attachment_rows or note.rows
            rows = [row for row in full if row.fingerprint in shown]
            if len(rows) == len(full):
                return note
            meta["members"], meta["visible"] = members_hash(rows), len(rows)  # what the message will show
            self._r.hset(self._k("msgs"), note.group_key, _dumps(meta))
        return build(note.kind, note.group_key, meta, rows, max_inline=self.rules.max_inline_rows,
                     resolved=note.resolved_rows, muted=note.muted_count + len(full) - len(rows), at=note.at)

    def active_alerts(self, host: str) -> dict[str, dict]:
        """Alert records of one host (for `/hyperv replication` and tests)."""
        return load_hash(self._r.hgetall(self._k("alerts", host)))

    def firing_by_severity(self, hosts: Sequence[str]) -> dict[str, int]:
        """How many alerts fire (past their debounce) per severity across these hosts (for metrics)."""
        pipe = self._r.pipeline(transaction=False)
        for host in hosts:
            pipe.hvals(self._k("alerts", host))
        counts: dict[str, int] = defaultdict(int)
        for raws in pipe.execute():
            for record in (json.loads(raw) for raw in raws):
                if record.get("status") == "firing":
                    counts[str(record.get("severity", ""))] += 1
        return dict(counts)

    # ---- per-host state -----------------------------------------------------------------------

    def _k(self, *parts: str) -> str:
        return ":".join((self._p, *parts))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        lock = self._r.lock(self._k("lock"), timeout=self._lock_timeout, blocking_timeout=self._lock_wait)
        if not lock.acquire():
            raise TimeoutError("alert state is busy: another worker held its lock too long")
        try:
            yield
        finally:
            lock.release()

    def _edit_message(self, key: str, change) -> bool:
        with self._locked():
            raw = self._r.hget(self._k("msgs"), key)
            if raw is None:
                return False
            meta = json.loads(raw)
            change(meta)
            self._r.hset(self._k("msgs"), key, _dumps(meta))
            return True

    @staticmethod
    def _covered(replicas: list[ReplicaObservation], hosts: list[HostObservation]) -> list[str]:
        return sorted({o.host for o in replicas} | {h.host for h in hosts})

    def _read(self, hosts: list[HostObservation], covered: list[str], ts: float) -> _Snapshot:
        """Everything one ingest needs, in one round trip (host liveness is written first)."""
        pipe = self._r.pipeline(transaction=False)
        for h in hosts:
            if h.reachable:
                pipe.hdel(self._k("down"), short_host(h.host))
            else:
                pipe.hsetnx(self._k("down"), short_host(h.host), str(ts))
        pipe.hkeys(self._k("down"))
        pipe.hgetall(self._k("silences"))
        pipe.hgetall(self._k("groups"))
        pipe.hgetall(self._k("msgs"))
        pipe.smembers(self._k("dirty"))
        for host in covered:
            pipe.hgetall(self._k("alerts", host))
        res = pipe.execute()[len(hosts):]
        silences = load_hash(res[1])
        expired = [sid for sid, entry in silences.items() if entry["until"] <= ts]
        if expired:
            self._r.hdel(self._k("silences"), *expired)
        return _Snapshot(
            down={text(k) for k in res[0]},
            silences={sid: e for sid, e in silences.items() if e["until"] > ts},
            groups=load_hash(res[2]), msgs=load_hash(res[3]), dirty={text(g) for g in res[4]},
            old={host: load_hash(raw) for host, raw in zip(covered, res[5:])},
        )

    def _ingest_host(
        self, pipe, host: str, old: dict[str, dict], findings: list[Finding], reachable: bool,
        snap: _Snapshot, ts: float,
    ) -> set[str]:
        """Queue one host's new records and group contributions on `pipe`; return groups now dirty."""
        new, resolved = next_records(old, findings, reachable, host, self.rules, ts)
        before, after = contributions(old), contributions(new)
        pipe.delete(self._k("alerts", host))
        if new:
            pipe.hset(self._k("alerts", host), mapping={fp: _dumps(r) for fp, r in new.items()})
        dirty: set[str] = set()
        for g in set(before) | set(after):
            if self._write_contribution(pipe, g, host, before.get(g), after.get(g)):
                dirty.add(g)
        for rec in resolved:
            if rec["group"] in snap.groups:
                pipe.rpush(self._k("gresolved", rec["group"]), _dumps(rec["row"]))
        for rec in new.values():
            if rec["status"] == "firing" and rec["group"] not in snap.groups:
                snap.groups[rec["group"]] = self._new_group(rec, ts)
                pipe.hset(self._k("groups"), rec["group"], _dumps(snap.groups[rec["group"]]))
        return dirty

    def _write_contribution(self, pipe, g: str, host: str, old: Contribution | None, new: Contribution | None) -> bool:
        if new:
            pipe.hset(self._k("grows", g), host, _dumps(new))
        else:
            pipe.hdel(self._k("grows", g), host)
        if signature(old) == signature(new):
            return False
        pipe.sadd(self._k("dirty"), g)
        return True

    def _new_group(self, rec: dict, ts: float) -> dict:
        severity = Severity(rec["severity"])
        channel, mention = route(severity, self.rules)
        return {"key": rec["group"], "condition": rec["row"]["condition"], "scope": rec["scope"],
                "severity": severity.value, "channel": channel, "mention": mention, "created": ts, "msg": None}

    # ---- groups and messages ------------------------------------------------------------------

    def _evaluate(self, snap: _Snapshot, ts: float) -> list[Notification]:
        groups, msgs, dirty = snap.groups, snap.msgs, snap.dirty
        mutes = self._contents.mutes(groups, snap.down, snap.silences)
        ready = self._ready_groups(groups, ts, mutes)
        out, posted, joined = self._place_new(ready, groups, msgs, ts, mutes)
        for key, meta in list(msgs.items()):
            if key in posted:
                continue
            changed = key in joined or any(g in dirty for g in meta["groups"]) or meta.get("mutes") != mutes.key
            note = self._review_message(key, meta, groups, changed, ts, mutes)
            if note is not None:
                out.append(note)
        return out

    def _ready_groups(
        self, groups: dict[str, dict], ts: float, mutes: Mutes,
    ) -> dict[str, tuple[list[str], list[str]]]:
        """Unposted groups, by channel, for channels where some group wait is over: (wait over, still
        waiting). Groups resolved within their wait are dropped unposted: nothing is ever sent (§C1)."""
        unposted: dict[str, list[str]] = defaultdict(list)
        for g, meta in sorted(groups.items()):
            if meta["msg"] is None:
                unposted[meta["channel"]].append(g)
        out: dict[str, tuple[list[str], list[str]]] = {}
        empty: list[str] = []
        for channel, gs in unposted.items():
            due = {g for g in gs if ts - groups[g]["created"] >= self.rules.group_wait_s}
            if not due:
                continue
            ready: list[str] = []
            waiting: list[str] = []
            for g, (rows, firing) in self._contents.rows_each(gs, mutes).items():
                if firing == 0 and g in due:
                    empty.append(g)
                elif rows:
                    (ready if g in due else waiting).append(g)
            if ready:
                out[channel] = (ready, waiting)
        self._contents.delete(empty, groups)
        return out

    def _place_new(
        self, ready: dict[str, tuple[list[str], list[str]]], groups: dict[str, dict], msgs: dict[str, dict],
        ts: float, mutes: Mutes,
    ) -> tuple[list[Notification], set[str], set[str]]:
        """Give ready groups a message: join the channel's open storm; if more groups than
        coalesce_after_groups are due or waiting on the channel, one storm message takes them all;
        else one message each. Returns notifications, new message keys, joined message keys."""
        touched: set[str] = set()
        for channel, (due, waiting) in sorted(ready.items()):
            storm = next((k for k, m in msgs.items() if m["channel"] == channel and m.get("storm")), None)
            if storm is None and len(due) + len(waiting) > self.rules.coalesce_after_groups:
                storm = f"m-storm-{hashlib.sha1(channel.encode()).hexdigest()[:8]}-{int(ts * 1000)}"
                msgs[storm] = self._new_message(storm, ts, storm=True)
            if storm is not None:
                self._attach(storm, due + waiting, groups, msgs)
                touched.add(storm)
                continue
            for g in due:
                key = f"m-{hashlib.sha1(g.encode()).hexdigest()[:12]}-{int(ts * 1000)}"
                msgs[key] = self._new_message(key, ts, storm=False)
                self._attach(key, [g], groups, msgs)
                touched.add(key)
        posted = {k for k in touched if msgs[k].get("new")}
        out = [self._post(key, msgs[key], ts, mutes) for key in sorted(posted)]
        return out, posted, touched - posted

    @staticmethod
    def _new_message(key: str, ts: float, storm: bool) -> dict:
        return {"key": key, "channel": "", "severity": Severity.WARNING.value, "mention": None, "conditions": [],
                "scopes": [], "groups": [], "storm": storm, "created": ts, "last_post": ts, "last_update": ts,
                "members": "", "visible": 0, "acked": None, "ref": None, "new": True}

    def _attach(self, key: str, gs: list[str], groups: dict[str, dict], msgs: dict[str, dict]) -> None:
        meta = msgs[key]
        for g in gs:
            group = groups[g]
            group["msg"] = key
            meta["groups"].append(g)
            meta["channel"] = group["channel"]
            meta["conditions"].append(group["condition"])
            meta["scopes"].append(group["scope"])
            if group["severity"] == Severity.CRITICAL.value:
                meta["severity"], meta["mention"] = Severity.CRITICAL.value, group["mention"]
        pipe = self._r.pipeline(transaction=False)
        pipe.hset(self._k("groups"), mapping={g: _dumps(groups[g]) for g in gs})
        pipe.hset(self._k("msgs"), key, _dumps(meta))
        pipe.execute()

    def _post(self, key: str, meta: dict, ts: float, mutes: Mutes) -> Notification:
        rows, firing = self._contents.rows(meta["groups"], mutes)
        self._contents.drain_resolved(meta["groups"])  # resolved before anyone was told: nothing to report
        meta.pop("new", None)
        self._save_message(key, meta, rows, ts, mutes, posted=True)
        return build(NotificationKind.POST_GROUP, key, meta, rows, max_inline=self.rules.max_inline_rows,
                     muted=firing - len(rows), at=ts)

    def _save_message(
        self, key: str, meta: dict, rows: list[AlertRow], ts: float, mutes: Mutes, posted: bool,
    ) -> None:
        meta["members"] = members_hash(rows)
        meta["mutes"] = mutes.key  # the muting this message was built under
        meta["visible"] = len(rows)
        meta["last_update"] = ts
        if posted:
            meta["last_post"] = ts
        pipe = self._r.pipeline(transaction=False)
        pipe.hset(self._k("msgs"), key, _dumps(meta))
        pipe.srem(self._k("dirty"), *meta["groups"])
        pipe.execute()

    def _review_message(
        self, key: str, meta: dict, groups: dict[str, dict], changed: bool, ts: float, mutes: Mutes,
    ) -> Notification | None:
        """Resolve, update in place, or repeat one posted message."""
        repeat_due = meta["acked"] is None and ts - meta["last_post"] >= self.rules.repeat_interval_s
        if not changed and not repeat_due:
            return None
        rows, firing = self._contents.rows(meta["groups"], mutes)
        limit = self.rules.max_inline_rows
        if firing == 0:
            resolved = self._contents.drain_resolved(meta["groups"])
            self._contents.delete(list(meta["groups"]), groups)
            self._r.hdel(self._k("msgs"), key)
            return build(NotificationKind.RESOLVE, key, meta, [], max_inline=limit, resolved=resolved, at=ts)
        if members_hash(rows) != meta["members"]:
            if ts - meta["last_update"] < self.rules.group_interval_s:
                return None  # stays dirty; goes out when the group interval has passed
            back = meta["visible"] == 0 and bool(rows)  # e.g. a snooze ended: surface it again
            kind = NotificationKind.REPEAT if back else NotificationKind.UPDATE_GROUP
            resolved = self._contents.drain_resolved(meta["groups"])
            self._save_message(key, meta, rows, ts, mutes, posted=back)
            return build(kind, key, meta, rows, max_inline=limit, resolved=resolved, muted=firing - len(rows), at=ts)
        if repeat_due and rows:
            self._save_message(key, meta, rows, ts, mutes, posted=True)
            return build(NotificationKind.REPEAT, key, meta, rows, max_inline=limit, muted=firing - len(rows), at=ts)
        self._note_reviewed(key, meta, mutes)
        return None

    def _note_reviewed(self, key: str, meta: dict, mutes: Mutes) -> None:
        """Same members as posted: nothing to send, and no review again until something changes."""
        pipe = self._r.pipeline(transaction=False)
        pipe.srem(self._k("dirty"), *meta["groups"])
        if meta.get("mutes") != mutes.key:
            meta["mutes"] = mutes.key
            pipe.hset(self._k("msgs"), key, _dumps(meta))
        pipe.execute()
