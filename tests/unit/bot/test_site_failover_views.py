"""The site failover preview within Block Kit limits for 200 VMs (and 120 groups), details in thread chunks."""

from __future__ import annotations

import json
from typing import Any

from bot.views import site_failover as rv

MAX_BLOCKS, SECTION_CHARS, MESSAGE_CHARS = 50, 3000, 11_000


def _row(i: int, refused: bool = False) -> dict[str, Any]:
    return {"vm": f"vm-{i:03d}-with-a-rather-long-name", "primary": f"hv-{i % 10 * 2:03d}",
            "replica": f"hv-{i % 10 * 2 + 1:03d}", "primary_reachable": False, "replica_reachable": True,
            "state": "Replicating", "health": "Critical", "replica_vm_state": "Off", "point": "latest replication",
            "point_time": "2026-03-01T03:00:00+00:00", "loss_s": 300 + i, "notes": [], "steps": 2, "signature": [],
            "refused": ["replication state on hv-001 is FailedOver; failover needs Replicating or Suspended"]
            if refused else [], "recommend": {"kind": "unplanned", "reason": "the primary host does not answer"}}


def _data(vms: int, groups: int) -> dict[str, Any]:
    per = vms // groups
    gs = [{"name": f"boot group {g} " + "x" * 40, "vms": [_row(g * per + i, refused=i == 0) for i in range(per)]}
          for g in range(groups)]
    return {"kind": "unplanned", "scope": {"kind": "site", "value": "site-a"}, "at": "2026-03-01T03:07:00+00:00",
            "groups": gs, "host_errors": {"hv-000": "cannot connect"},
            "totals": {"groups": groups, "vms": vms, "ready": vms - groups, "refused": groups,
                       "replica_hosts": [f"hv-{i:03d}" for i in range(1, 20, 2)], "max_loss_s": 499,
                       "hosts_not_answering": [f"hv-{i:03d}" for i in range(0, 20, 2)]},
            "recommendation": {"kind": "unplanned",
                               "reason": "the primary hosts hv-000 do not answer (200 of 200 VMs)"}}


def _check_limits(view: rv.View) -> str:
    blocks = view.block_dicts()
    assert len(blocks) <= MAX_BLOCKS
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert all(len(t) <= SECTION_CHARS for t in texts)
    assert sum(len(t) for t in texts) <= MESSAGE_CHARS
    return json.dumps(blocks)


def test_two_hundred_vms_in_one_message_and_a_thread() -> None:
    for groups in (1, 5, 120):
        data = _data(200 if groups != 120 else 240, groups)
        shown = _check_limits(rv.preview(data, "p1"))
        assert "hvbot_rc_request" in shown and "Recommended: unplanned" in shown
        assert "up to 8 min 19 s" in shown  # the worst data loss, in the message itself
        assert "boot group 0" in shown
        if groups == 120:
            assert "more groups, all listed in the thread" in shown
        _check_limits(rv.approval_card(data, "U1", "a.b", "03:22 UTC"))
        chunks = rv.thread_details(data)
        assert all(len(c) <= SECTION_CHARS for c in chunks)
        joined = "\n".join(chunks)
        for g in data["groups"]:  # every VM, in group order, with its loss or its refusal
            for row in g["vms"]:
                assert f"`{row['vm']}`" in joined
        assert "refused — replication state" in joined and "loses 5 min 1 s" in joined
        assert "`hv-000` does not answer" in joined


def test_nothing_ready_offers_no_request() -> None:
    data = _data(4, 1)
    data["totals"]["ready"] = 0
    assert "hvbot_rc_request" not in json.dumps(rv.preview(data, "p1").block_dicts())


def test_the_thread_explains_cryptic_replication_states_once() -> None:
    data = _data(6, 2)
    data["groups"][0]["vms"][1]["state"] = "WaitingForStartResynchronize"
    data["groups"][1]["vms"][1]["state"] = "WaitingForStartResynchronize"
    joined = "\n".join(rv.thread_details(data))
    assert joined.count("WaitingForStartResynchronize: the primary needs a resynchronization") == 1
    assert "Replicating:" not in joined  # plain names need no legend
    plain = _data(6, 2)
    assert "States:" not in "\n".join(rv.thread_details(plain))


def test_a_long_refusal_reaches_the_thread_whole() -> None:
    """The extended-replication refusal ends with what would work instead; cutting it would hide that."""
    data = _data(4, 1)
    advice = ("hv-b2 also replicates vm-000 to hv-b1.lab.local (extended replication), and a VM has only one replica, "
              "so replication could not be reversed back to hv-a2. Either remove the extended replication on hv-b2 "
              "(Remove-VMReplication -VMName vm-000 -ReplicationRelationshipType Extended) and ask again, or fail over "
              "without reversing (`failover vm-000 unplanned`; changes since the last replication are lost) and keep "
              "replicating to hv-b1.lab.local")
    data["groups"][0]["vms"][0]["refused"] = [advice]
    assert rv._esc(advice) in "\n".join(rv.thread_details(data))
