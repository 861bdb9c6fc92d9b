"""Two-person approval of dangerous operations, atomic in Redis, plus a per-VM lock (jobs.locks.VmLock).

A request is bound to its exact parameters by an HMAC digest (server secret over canonical JSON), so a
tampered button value is detected. Every state change is a compare-and-set inside one Lua script, which
also appends the audit entry, so of many concurrent clicks exactly one decides:

    pending ─approve→ approved ─claim_execution→ executing ─finish→ finished
       ├─reject→ rejected
       └─(expires_at passed)→ expired

Audit entries use the fields of ``jobs.audit.AuditEntry`` (user, channel, command, outcome, detail, job_id,
at) plus ``approval_id``; ``job_id`` carries the approval id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import redis
from redis.typing import EncodableT, FieldT

from jobs import keys
from jobs.audit import MAX_ENTRIES
from jobs.locks import VmLock  # noqa: F401  # the lock a failover takes after approval, importable from here too


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    EXECUTING = "executing"
    FINISHED = "finished"


class Verdict(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    ALREADY_DECIDED = "already_decided"
    SELF_APPROVAL = "self_approval"
    NOT_APPROVER = "not_approver"
    EXPIRED = "expired"
    UNKNOWN = "unknown"
    TAMPERED = "tampered"


class _Secret(Protocol):
    def get_secret_value(self) -> str: ...


@dataclass(frozen=True)
class Approval:
    id: str
    kind: str
    params: dict[str, Any]
    requester: str
    channel: str
    status: Status
    created_at: float
    expires_at: float
    digest: str
    needs_approval: bool = True
    decided_by: str = ""
    decided_at: float = 0.0
    worker_id: str = ""
    outcome: str = ""
    message_ts: str = ""

    @property
    def button_value(self) -> str:
        """What an Approve/Reject button carries: the id and the digest binding the parameters."""
        return f"{self.id}.{self.digest}"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    approval: Approval | None = None

    @property
    def ok(self) -> bool:
        return self.verdict in (Verdict.APPROVED, Verdict.REJECTED)


def parse_button_value(value: str) -> tuple[str, str]:
    """(approval id, digest) from a button value; malformed values give a digest that never matches."""
    approval_id, _, digest = value.partition(".")
    return approval_id, digest


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _fmt_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


# The audit helper shared by every script: XADD capped (approximate MAXLEN) with AuditEntry's fields.
_AUDIT_LUA = """
local function audit(stream, maxlen, rec, outcome, user, detail, at)
  local f = redis.call('HMGET', rec, 'id', 'channel', 'command')
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'user', user, 'channel', f[2] or '',
    'command', f[3] or '', 'outcome', outcome, 'detail', detail, 'job_id', f[1] or '',
    'approval_id', f[1] or '', 'at', at)
end
"""

# KEYS: record, pending index, audit stream. ARGV: decision, user, is_approver, now, maxlen.
_DECIDE_LUA = _AUDIT_LUA + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'unknown'} end
local f = redis.call('HMGET', KEYS[1], 'status', 'requester', 'expires_at', 'decided_by', 'decided_at', 'id')
local decision, user, now = ARGV[1], ARGV[2], ARGV[4]
if f[1] ~= 'pending' then return {'already_decided', f[1], f[4] or '', f[5] or ''} end
if tonumber(now) >= tonumber(f[3]) then
  redis.call('HSET', KEYS[1], 'status', 'expired', 'decided_at', now)
  redis.call('ZREM', KEYS[2], f[6])
  audit(KEYS[3], ARGV[5], KEYS[1], 'expired', 'system', 'expired before a decision', now)
  return {'expired'}
end
if decision == 'approve' and user == f[2] then return {'self_approval'} end
local withdrawing = decision == 'reject' and user == f[2]
if ARGV[3] ~= '1' and not withdrawing then return {'not_approver'} end
local status = (decision == 'approve') and 'approved' or 'rejected'
redis.call('HSET', KEYS[1], 'status', status, 'decided_by', user, 'decided_at', now)
redis.call('ZREM', KEYS[2], f[6])
audit(KEYS[3], ARGV[5], KEYS[1], status, user, withdrawing and 'withdrawn by the requester' or '', now)
return {status}
"""

# KEYS: record, pending index, audit stream. ARGV: id, now, maxlen.
_EXPIRE_LUA = _AUDIT_LUA + """
local f = redis.call('HMGET', KEYS[1], 'status', 'expires_at')
if f[1] ~= 'pending' or tonumber(ARGV[2]) < tonumber(f[2]) then
  if f[1] ~= 'pending' then redis.call('ZREM', KEYS[2], ARGV[1]) end
  return 0
end
redis.call('HSET', KEYS[1], 'status', 'expired', 'decided_at', ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
audit(KEYS[3], ARGV[3], KEYS[1], 'expired', 'system', 'no decision before the deadline', ARGV[2])
return 1
"""

# Generic compare-and-set. KEYS: record, audit stream, executing set.
# ARGV: from, to, now, maxlen, user, detail, set_op, expected worker ('' = any), then field/value pairs.
_CAS_LUA = _AUDIT_LUA + """
local f = redis.call('HMGET', KEYS[1], 'status', 'id', 'worker_id')
if f[1] ~= ARGV[1] then return {'refused', f[1] or '', f[3] or ''} end
if ARGV[8] ~= '' and f[3] ~= ARGV[8] then return {'refused', f[1], f[3] or ''} end
local args = {'status', ARGV[2]}
for i = 9, #ARGV do args[#args + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(args))
if ARGV[7] == 'add' then redis.call('SADD', KEYS[3], f[2]) else redis.call('SREM', KEYS[3], f[2]) end
audit(KEYS[2], ARGV[4], KEYS[1], ARGV[2], ARGV[5], ARGV[6], ARGV[3])
return {'ok'}
"""

# Only for an existing record: a plain HSET would resurrect an expired one without a TTL.
_ATTACH_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'channel', ARGV[1], 'message_ts', ARGV[2])
return 1
"""


class ApprovalStore:
    """Approval requests in Redis. ``now`` arguments (epoch seconds) let tests drive time without sleeping."""

    def __init__(self, connection: redis.Redis, prefix: str = keys.PREFIX, *, secret: bytes | str | _Secret,
                 audit_stream: str, audit_maxlen: int = MAX_ENTRIES, retention_s: int = 7 * 86400) -> None:
        self._redis = connection
        self._prefix = prefix
        self._key = _secret_bytes(secret)
        self._audit = audit_stream
        self._maxlen = str(audit_maxlen)
        self._retention_s = retention_s
        self._pending = keys.approvals_pending_key(prefix)
        self._executing = keys.approvals_executing_key(prefix)
        self._decide = connection.register_script(_DECIDE_LUA)
        self._cas = connection.register_script(_CAS_LUA)
        self._attach = connection.register_script(_ATTACH_LUA)

    def __repr__(self) -> str:  # never show the secret
        return f"ApprovalStore(prefix={self._prefix!r}, audit_stream={self._audit!r})"

    def _rec(self, approval_id: str) -> str:
        return keys.approval_key(approval_id, self._prefix)

    def digest(self, approval_id: str, kind: str, params: Mapping[str, Any]) -> str:
        body = canonical_json({"id": approval_id, "kind": kind, "params": params})
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()

    def request(self, kind: str, params: Mapping[str, Any], requester: str, channel: str, ttl_s: int = 900,
                needs_approval: bool = True, *, now: float | None = None) -> Approval:
        now = time.time() if now is None else now
        approval_id = secrets.token_hex(8)
        params_json = canonical_json(params)
        record: dict[FieldT, EncodableT] = {
            "id": approval_id, "kind": kind, "params": params_json, "requester": requester,
            "channel": channel, "created_at": repr(now), "expires_at": repr(now + ttl_s),
            "needs_approval": "1" if needs_approval else "0",
            "command": f"{kind} {params_json}"[:300],
            "status": str(Status.PENDING if needs_approval else Status.APPROVED),
        }
        if not needs_approval:  # configured policy (e.g. test failover): approved at birth, still audited
            record |= {"decided_by": "policy", "decided_at": repr(now)}
        record["digest"] = self.digest(approval_id, kind, json.loads(params_json))
        rec = self._rec(approval_id)
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(rec, mapping=record)
            pipe.expire(rec, ttl_s + self._retention_s)
            if needs_approval:
                pipe.zadd(self._pending, {approval_id: now + ttl_s})
            pipe.execute()
        outcome = "requested" if needs_approval else "approved"
        self._audit_entry(rec, outcome, requester, "" if needs_approval else "no approval needed by policy", now)
        approval = self.get(approval_id)
        assert approval is not None  # just written in one transaction
        return approval

    def get(self, approval_id: str) -> Approval | None:
        return _load(self._redis, self._rec(approval_id))

    def attach_message(self, approval_id: str, channel: str, ts: str) -> None:
        """Remember the approval card (channel, ts) so workers and housekeeping can update it."""
        self._attach(keys=[self._rec(approval_id)], args=[channel, ts])

    def decide(self, approval_id: str, decision: str, user: str, user_is_approver: bool, digest: str,
               *, now: float | None = None) -> Decision:
        """Approve or reject; exactly one of many concurrent calls wins, the others learn who decided."""
        now = time.time() if now is None else now
        if decision not in ("approve", "reject"):
            raise ValueError(f"decision must be approve or reject, not {decision!r}")
        current = self.get(approval_id)
        if current is None:
            return self._refuse(approval_id, Verdict.UNKNOWN, user, now, "unknown or purged approval request")
        expected = self.digest(current.id, current.kind, current.params)
        if not hmac.compare_digest(expected.encode(), digest.encode()):
            return self._refuse(approval_id, Verdict.TAMPERED, user, now,
                                "the button does not match the request's parameters (tampered or stale)")
        reply = [_text(v) for v in self._decide(
            keys=[self._rec(approval_id), self._pending, self._audit],
            args=[decision, user, "1" if user_is_approver else "0", repr(now), self._maxlen])]
        if reply[0] == Verdict.ALREADY_DECIDED and reply[1] == Status.EXPIRED:
            reply = [Verdict.EXPIRED]
        if reply[0] in (Status.APPROVED, Status.REJECTED):
            return Decision(Verdict(reply[0]), f"{reply[0]} by {user} at {_fmt_time(now)}", self.get(approval_id))
        return self._refuse(approval_id, Verdict(reply[0]), user, now, _refusal_reason(reply, current))

    def _refuse(self, approval_id: str, verdict: Verdict, user: str, now: float, reason: str) -> Decision:
        self._audit_entry(self._rec(approval_id), "refused", user, f"{verdict}: {reason}", now,
                          approval_id=approval_id)
        return Decision(verdict, reason, self.get(approval_id))

    def expire_due(self, now: float | None = None) -> list[Approval]:
        """Move overdue pending requests to expired; returns them so the caller can update their cards."""
        return expire_due(self._redis, now, prefix=self._prefix, audit_stream=self._audit,
                          audit_maxlen=int(self._maxlen))

    def claim_execution(self, approval_id: str, worker_id: str, *, now: float | None = None) -> bool:
        """approved → executing, once: only the caller that gets True may run the operation."""
        now = time.time() if now is None else now
        return self._transition(approval_id, Status.APPROVED, Status.EXECUTING, worker_id, "", "add", "",
                                {"worker_id": worker_id, "started_at": repr(now)}, now)

    def finish(self, approval_id: str, outcome: str, *, detail: str = "", worker_id: str = "",
               now: float | None = None) -> bool:
        """executing → finished with an outcome (e.g. succeeded, failed, abandoned); False if not executing."""
        now = time.time() if now is None else now
        return self._transition(approval_id, Status.EXECUTING, Status.FINISHED, worker_id or "system",
                                f"{outcome}: {detail}"[:300], "remove", worker_id,
                                {"outcome": outcome, "finished_at": repr(now)}, now)

    def executing_ids(self) -> list[str]:
        """Approvals whose execution started and has not finished (to find runs of dead workers)."""
        return sorted(_text(v) for v in self._redis.smembers(self._executing))

    def _transition(self, approval_id: str, from_: Status, to: Status, user: str, detail: str, set_op: str,
                    expected_worker: str, fields: Mapping[str, str], now: float) -> bool:
        pairs = [item for kv in fields.items() for item in kv]
        reply = self._cas(keys=[self._rec(approval_id), self._audit, self._executing],
                          args=[from_, to, repr(now), self._maxlen, user, detail, set_op, expected_worker, *pairs])
        return _text(reply[0]) == "ok"

    def _audit_entry(self, rec: str, outcome: str, user: str, detail: str, now: float,
                     approval_id: str = "") -> None:
        channel, command, stored_id = (_text(v) for v in self._redis.hmget(rec, "channel", "command", "id"))
        approval_id = stored_id or approval_id
        self._redis.xadd(self._audit, {
            "user": user, "channel": channel, "command": command, "outcome": outcome, "detail": detail[:300],
            "job_id": approval_id, "approval_id": approval_id, "at": repr(now),
        }, maxlen=int(self._maxlen), approximate=True)


def expire_due(connection: redis.Redis, now: float | None = None, *, prefix: str = keys.PREFIX,
               audit_stream: str = keys.AUDIT_STREAM, audit_maxlen: int = MAX_ENTRIES) -> list[Approval]:
    """Move overdue pending requests to expired; returns them so the caller can update their cards.

    Needs no secret (unlike `ApprovalStore`): expiring compares times only, it never checks or binds a button.
    """
    now = time.time() if now is None else now
    pending = keys.approvals_pending_key(prefix)
    expire = connection.register_script(_EXPIRE_LUA)
    expired: list[Approval] = []
    due: list[bytes | str] = connection.zrangebyscore(pending, "-inf", now)  # type: ignore[assignment]
    for raw_id in due:
        approval_id = _text(raw_id)
        rec = keys.approval_key(approval_id, prefix)
        if expire(keys=[rec, pending, audit_stream], args=[approval_id, repr(now), str(audit_maxlen)]) == 1:
            approval = _load(connection, rec)
            if approval is not None:
                expired.append(approval)
        elif not connection.exists(rec):
            connection.zrem(pending, approval_id)  # record purged: drop its index entry
    return expired


def _load(connection: redis.Redis, rec: str) -> Approval | None:
    raw = connection.hgetall(rec)
    if not raw:
        return None
    return _approval({_text(k): _text(v) for k, v in raw.items()})


def _refusal_reason(reply: list[str], current: Approval) -> str:
    verdict = reply[0]
    if verdict == Verdict.ALREADY_DECIDED:
        status, who, at = reply[1], reply[2] or "nobody", float(reply[3] or 0)
        return f"already decided by {who} at {_fmt_time(at)} ({status})"
    if verdict == Verdict.EXPIRED:
        return f"the request expired at {_fmt_time(current.expires_at)}"
    if verdict == Verdict.SELF_APPROVAL:
        return "you requested this operation; another approver must approve it"
    return "approving needs the approver role"


def _secret_bytes(secret: bytes | str | _Secret) -> bytes:
    if isinstance(secret, bytes):
        value = secret
    elif isinstance(secret, str):
        value = secret.encode()
    else:
        value = secret.get_secret_value().encode()
    if len(value) < 16:
        raise ValueError("the approval secret must be at least 16 bytes")
    return value


def _approval(f: dict[str, str]) -> Approval:
    return Approval(
        id=f["id"], kind=f["kind"], params=json.loads(f["params"]), requester=f["requester"],
        channel=f.get("channel", ""), status=Status(f["status"]), created_at=float(f["created_at"]),
        expires_at=float(f["expires_at"]), digest=f["digest"], needs_approval=f.get("needs_approval") == "1",
        decided_by=f.get("decided_by", ""), decided_at=float(f.get("decided_at") or 0),
        worker_id=f.get("worker_id", ""), outcome=f.get("outcome", ""), message_ts=f.get("message_ts", ""),
    )
