"""Approvals and the per-VM lock against a real Redis (DB 12 at REDIS_URL, flushed per test)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from jobs.audit import AuditEntry
from jobs.failover.approvals import ApprovalStore, Decision, Status, Verdict, VmLock, parse_button_value
from tests.support.fixtures_redis import emptied_db

SECRET = "test-approval-secret-0123456789"
STREAM = "hvbot:audit"
T0 = 1_800_000_000.0
PARAMS = {"vm": "fw01", "kind": "unplanned", "primary": "hv-a1", "replica": "hv-b1", "point": None}


@pytest.fixture
def conn() -> Iterator[redis.Redis]:
    with emptied_db(12) as c:
        yield c


@pytest.fixture
def store(conn: redis.Redis) -> ApprovalStore:
    return ApprovalStore(conn, secret=SECRET, audit_stream=STREAM)


def audit(conn: redis.Redis, approval_id: str) -> list[dict[str, str]]:
    rows: list[tuple[bytes, dict[bytes, bytes]]] = conn.xrange(STREAM)  # type: ignore[assignment]
    entries = [{k.decode(): v.decode() for k, v in fields.items()} for _id, fields in rows]
    return [e for e in entries if e["approval_id"] == approval_id]


def outcomes(conn: redis.Redis, approval_id: str) -> list[str]:
    return [e["outcome"] for e in audit(conn, approval_id)]


def run_together(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run fn(i) for i < n in n threads released at once by a barrier."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = fn(i)
        except BaseException as exc:  # surfaced below, not swallowed
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    return results


def test_request_is_pending_bound_and_audited(store: ApprovalStore, conn: redis.Redis) -> None:
    a = store.request("failover", PARAMS, "U_REQ", "C_ONCALL", now=T0)
    assert a.status is Status.PENDING and a.expires_at == T0 + 900 and a.params == PARAMS
    assert parse_button_value(a.button_value) == (a.id, a.digest)
    assert store.get(a.id) == a
    assert outcomes(conn, a.id) == ["requested"]
    entry = audit(conn, a.id)[0]
    assert {f.name for f in dataclasses.fields(AuditEntry)} <= set(entry)
    assert entry["user"] == "U_REQ" and entry["channel"] == "C_ONCALL" and "fw01" in entry["command"]
    assert SECRET not in repr(store) and all(SECRET not in v for v in entry.values())
    # The digest binds the exact parameters and the request id, under this server's secret.
    assert store.digest(a.id, "failover", PARAMS | {"point": "older"}) != a.digest
    other = ApprovalStore(conn, secret="another-secret-0123456789", audit_stream=STREAM)
    assert other.digest(a.id, "failover", PARAMS) != a.digest


def test_approve_then_everyone_else_is_told_who_decided(store: ApprovalStore, conn: redis.Redis) -> None:
    a = store.request("failover", PARAMS, "U_REQ", "C1", now=T0)
    d = store.decide(a.id, "approve", "U_APP", True, a.digest, now=T0 + 10)
    assert d.ok and d.verdict is Verdict.APPROVED and d.approval is not None
    assert d.approval.status is Status.APPROVED and d.approval.decided_by == "U_APP"
    late = store.decide(a.id, "reject", "U_OTHER", True, a.digest, now=T0 + 11)
    assert late.verdict is Verdict.ALREADY_DECIDED and not late.ok
    assert "already decided by U_APP at" in late.reason and "(approved)" in late.reason
    assert outcomes(conn, a.id) == ["requested", "approved", "refused"]


@pytest.mark.parametrize("trial", range(20))
def test_fifty_concurrent_decisions_have_exactly_one_winner(store: ApprovalStore, conn: redis.Redis,
                                                             trial: int) -> None:
    a = store.request("failover", PARAMS, "U_REQ", "C1", now=T0)

    def click(i: int) -> Decision:
        if i % 3 == 0:  # duplicate deliveries of one and the same payload
            return store.decide(a.id, "approve", "U_DUP", True, a.digest, now=T0 + 5)
        decision = "reject" if i % 7 == 0 else "approve"
        return store.decide(a.id, decision, f"U_{i}", True, a.digest, now=T0 + 5)

    results = run_together(50, click)
    winners = [d for d in results if d.ok]
    assert len(winners) == 1
    winner = winners[0].approval
    assert winner is not None
    losers = [d for d in results if not d.ok]
    assert all(d.verdict is Verdict.ALREADY_DECIDED for d in losers)
    assert all(f"already decided by {winner.decided_by} at" in d.reason for d in losers)
    decided = [o for o in outcomes(conn, a.id) if o in ("approved", "rejected")]
    assert decided == [winner.status.value]
    assert store.get(a.id) == winner


def test_self_approval_is_refused_and_audited(store: ApprovalStore, conn: redis.Redis) -> None:
    a = store.request("failover", PARAMS, "U_REQ", "C1", now=T0)
    d = store.decide(a.id, "approve", "U_REQ", True, a.digest, now=T0 + 1)
    assert d.verdict is Verdict.SELF_APPROVAL and "another approver" in d.reason
    assert store.get(a.id).status is Status.PENDING  # type: ignore[union-attr]
    refused = audit(conn, a.id)[-1]
    assert refused["outcome"] == "refused" and refused["user"] == "U_REQ" and "self_approval" in refused["detail"]
    # The requester may withdraw (reject) their own request.
    w = store.decide(a.id, "reject", "U_REQ", False, a.digest, now=T0 + 2)
    assert w.verdict is Verdict.REJECTED and audit(conn, a.id)[-1]["detail"] == "withdrawn by the requester"


def test_non_approver_is_refused_and_audited(store: ApprovalStore, conn: redis.Redis) -> None:
    a = store.request("failover", PARAMS, "U_REQ", "C1", now=T0)
    for decision in ("approve", "reject"):
        d = store.decide(a.id, decision, "U_NOBODY", False, a.digest, now=T0 + 1)
        assert d.verdict is Verdict.NOT_APPROVER and "approver role" in d.reason
    assert store.get(a.id).status is Status.PENDING  # type: ignore[union-attr]
    assert outcomes(conn, a.id) == ["requested", "refused", "refused"]
    assert store.decide(a.id, "approve", "U_APP", True, a.digest, now=T0 + 2).ok


def test_expired_request_is_refused_and_audited(store: ApprovalStore, conn: redis.Redis) -> None:
    a = store.request("failover", PARAMS, "U_REQ", "C1", ttl_s=900, now=T0)
    assert store.decide(a.id, "approve", "U_APP", True, a.digest, now=T0 + 899).ok is True
    b = store.request("failover", PARAMS, "U_REQ", "C1", ttl_s=900, now=T0)
    d = store.decide(b.id, "approve", "U_APP", True, b.digest, now=T0 + 900)
    assert d.verdict is Verdict.EXPIRED and "expired at" in d.reason
    assert store.get(b.id).status is Status.EXPIRED  # type: ignore[union-attr]
    assert outcomes(conn, b.id) == ["requested", "expired", "refused"]
    again = store.decide(b.id, "approve", "U_APP2", True, b.digest, now=T0 + 901)
    assert again.verdict is Verdict.EXPIRED
    assert store.expire_due(now=T0 + 5000) == []  # nothing pending any more


def test_expire_due_moves_only_overdue_requests_once(store: ApprovalStore, conn: redis.Redis) -> None:
    short = store.request("failover", PARAMS, "U_REQ", "C1", ttl_s=60, now=T0)
    long = store.request("failover", PARAMS, "U_REQ", "C1", ttl_s=900, now=T0)
    decided = store.request("failover", PARAMS, "U_REQ", "C1", ttl_s=60, now=T0)
    store.decide(decided.id, "reject", "U_APP", True, decided.digest, now=T0 + 1)
    assert store.expire_due(now=T0 + 59) == []
    due = store.expire_due(now=T0 + 60)
    assert [a.id for a in due] == [short.id] and due[0].status is Status.EXPIRED
    assert store.expire_due(now=T0 + 61) == []
    assert store.get(long.id).status is Status.PENDING  # type: ignore[union-attr]
    assert outcomes(conn, short.id) == ["requested", "expired"]
    late = store.decide(short.id, "approve", "U_APP", True, short.digest, now=T0 + 62)
    assert late.verdict is Verdict.EXPIRED


def test_expiry_racing_approval_has_one_outcome(store: ApprovalStore, conn: redis.Redis) -> None:
    for _ in range(10):
        a = store.request("failover", PARAMS, "U_REQ", "C1", ttl_s=60, now=T0)
        results = run_together(20, lambda i: store.expire_due(now=T0 + 60) if i % 2 else
                               store.decide(a.id, "approve", f"U{i}", True, a.digest, now=T0 + 59))
        final = store.get(a.id)
        assert final is not None and final.status in (Status.APPROVED, Status.EXPIRED)
        ended = [o for o in outcomes(conn, a.id) if o in ("approved", "expired")]
        assert ended == [final.status.value]
        assert sum(1 for r in results if isinstance(r, Decision) and r.ok) == (final.status is Status.APPROVED)


def test_tampered_button_value_is_refused_and_audited(store: ApprovalStore, conn: redis.Redis) -> None:
    a = store.request("failover", PARAMS, "U_REQ", "C1", now=T0)
    b = store.request("failover", PARAMS | {"vm": "db01"}, "U_REQ", "C1", now=T0)
    forged = [
        a.digest[:-1] + ("0" if a.digest[-1] != "0" else "1"),  # flipped character
        store.digest(a.id, "failover", PARAMS | {"point": "fw01 - older"}),  # other parameters
        b.digest,  # another request's valid digest
        "",
    ]
    for digest in forged:
        d = store.decide(a.id, "approve", "U_APP", True, digest, now=T0 + 1)
        assert d.verdict is Verdict.TAMPERED and not d.ok
    assert store.get(a.id).status is Status.PENDING  # type: ignore[union-attr]
    refused = [e for e in audit(conn, a.id) if e["outcome"] == "refused"]
    assert len(refused) == len(forged) and all("tampered" in e["detail"] for e in refused)


def test_unknown_id_is_refused_and_audited(store: ApprovalStore, conn: redis.Redis) -> None:
    d = store.decide("deadbeef", "approve", "U_APP", True, "x", now=T0)
    assert d.verdict is Verdict.UNKNOWN and d.approval is None
    assert outcomes(conn, "deadbeef") == ["refused"]


def test_claim_execution_happens_exactly_once(store: ApprovalStore, conn: redis.Redis) -> None:
    a = store.request("failover", PARAMS, "U_REQ", "C1", now=T0)
    assert store.claim_execution(a.id, "w-early", now=T0) is False  # not approved yet
    store.decide(a.id, "approve", "U_APP", True, a.digest, now=T0 + 1)
    claims = run_together(50, lambda i: store.claim_execution(a.id, f"w{i}", now=T0 + 2))
    assert claims.count(True) == 1
    running = store.get(a.id)
    assert running is not None and running.status is Status.EXECUTING
    assert running.worker_id == f"w{claims.index(True)}" and store.executing_ids() == [a.id]
    assert store.finish(a.id, "succeeded", worker_id="someone-else", now=T0 + 3) is False
    assert store.finish(a.id, "succeeded", worker_id=running.worker_id, now=T0 + 4) is True
    assert store.finish(a.id, "failed", now=T0 + 5) is False  # once
    done = store.get(a.id)
    assert done is not None and done.status is Status.FINISHED and done.outcome == "succeeded"
    assert store.executing_ids() == []
    assert outcomes(conn, a.id) == ["requested", "approved", "executing", "finished"]


def test_no_approval_needed_by_policy(store: ApprovalStore, conn: redis.Redis) -> None:
    a = store.request("failover", PARAMS | {"kind": "test"}, "U_REQ", "C1", needs_approval=False, now=T0)
    assert a.status is Status.APPROVED and a.decided_by == "policy"
    assert store.expire_due(now=T0 + 10_000) == []
    assert store.claim_execution(a.id, "w1", now=T0 + 1)
    assert outcomes(conn, a.id) == ["approved", "executing"]


def test_attach_message_only_for_existing_requests(store: ApprovalStore, conn: redis.Redis) -> None:
    a = store.request("failover", PARAMS, "U_REQ", "C1", now=T0)
    store.attach_message(a.id, "C_ONCALL", "1700000000.000100")
    got = store.get(a.id)
    assert got is not None and (got.channel, got.message_ts) == ("C_ONCALL", "1700000000.000100")
    store.attach_message("missing", "C", "1.0")
    assert not conn.exists("hvbot:approval:missing")


def test_vm_lock_excludes_and_releases_only_with_its_token(conn: redis.Redis) -> None:
    first, second = VmLock(conn, "fw01", ttl_ms=30_000), VmLock(conn, "fw01", ttl_ms=30_000)
    assert first.acquire("approval-1") is True
    assert second.acquire("approval-2") is False
    assert second.holder() == "approval-1"
    assert 0 < conn.pttl(first.key) <= 30_000
    assert VmLock(conn, "fw01", token="approval-2/forged").release() is False
    assert VmLock(conn, "fw01", token="approval-2/forged").renew() is False
    assert VmLock(conn, "db01").acquire("approval-3") is True  # other VMs are independent
    assert first.renew() is True
    assert first.release() is True and first.release() is False
    assert second.acquire("approval-2") is True and second.holder() == "approval-2"


def test_vm_lock_one_winner_among_many(conn: redis.Redis) -> None:
    for _ in range(20):
        conn.delete("hvbot:lock:vm:fw01")
        locks = [VmLock(conn, "fw01") for _ in range(50)]
        got = run_together(50, lambda i: locks[i].acquire(f"op{i}"))
        assert got.count(True) == 1
        assert locks[got.index(True)].holder() == f"op{got.index(True)}"


def test_vm_lock_of_a_dead_holder_lapses(conn: redis.Redis) -> None:
    dead = VmLock(conn, "fw01", ttl_ms=100)
    assert dead.acquire("killed-worker")
    waiting = VmLock(conn, "fw01")
    deadline = time.monotonic() + 10
    while not waiting.acquire("next-op"):  # wait on the condition, bounded by a deadline
        assert time.monotonic() < deadline, "the lock of a dead holder never lapsed"
    assert dead.renew() is False and dead.release() is False  # the old token no longer owns it
    assert waiting.holder() == "next-op"
