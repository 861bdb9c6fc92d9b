"""The whole-site follow-ups end to end, through signed Slack requests, real Redis, an in-process RQ worker and
the lab (a small fleet: three replicated VMs on site A, so it is quick): after an unplanned failover of site A,
*Complete all* on the run's card opens its own preview, is approved by a second person and completes every VM;
once site A is back, *Reverse all* does the same and every VM's primary is on site B. *Cancel all* after an unplanned
or a test site failover opens its own preview and approval and cancels every VM (replication as before; no test VM
left)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.adapters.fake_slack import FakeSlack
from lab.fleet import Lab
from lab.fleet_file import fleet_from_dict
from tests.support.fixtures_slack import action_body, slash_body
from tests.support.recovery_e2e import APP1, OP, buttons as _buttons, dispatch as _dispatch, recovery_world
from tests.support.recovery_e2e import work as _work

VMS = ("dc01", "sql01", "web01")
Rows = dict[tuple[str, str], dict[str, Any]]  # the lab's view of every VM copy, by (host, VM)


def _small_fleet() -> Any:
    vms = [{"name": name, "state": "Running", "replica": {"to": "hv-b1", "frequency_sec": 30}} for name in VMS]
    return fleet_from_dict({"hosts": [{"name": "hv-a1", "site": "site-a", "vms": vms},
                                      {"name": "hv-b1", "site": "site-b", "vms": []}]})


@pytest.fixture
def chat(make_lab: Callable[..., Lab], tmp_path: Path, fake_slack: FakeSlack, redis_conn: redis.Redis,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    # One plan of two groups and no pause between them, so the three VMs fail over in order and quickly.
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "site-a.yaml").write_text("name: site-a\ngroups:\n  - name: identity\n    vms: [\"dc*\"]\n"
                                       "  - name: services\n    vms: [\"sql*\", \"web*\"]\n")
    monkeypatch.setenv("HVBOT_RECOVERY_PLANS_DIR", str(plans))
    yield from recovery_world(make_lab(fleet=_small_fleet()), tmp_path, fake_slack, redis_conn, monkeypatch)


def _previews(fake: FakeSlack) -> list[Any]:
    return [p for p in fake.calls_to("chat.postMessage") if _buttons(p, "hvbot_rc_request")]


def _approve_and_run(c: dict[str, Any], open_preview: Callable[[], None], kind: str,
                     command: str) -> tuple[Any, Rows]:
    """Open a preview of ``kind`` (a typed command or a card's button), Request it, have a second person approve
    it, run it: the lab ran ``command`` (a cmdlet and the switches it must carry) once for each VM. Returns the
    run card's last update and every VM copy in the lab afterwards."""
    fake, seen, logged = c["fake"], len(_previews(c["fake"])), len(c["lab"].command_log())
    open_preview()
    _work(c)
    fresh = _previews(fake)[seen:]
    shown = json.dumps(fresh[0].args, ensure_ascii=False) if fresh else ""
    assert len(fresh) == 1 and kind[1:] in shown and f"{len(VMS)} ready" in shown, shown[:1500] or fake.calls[-3:]
    cards = len([x for x in fake.calls_to("chat.postMessage") if _buttons(x, "hvbot_rc_approve")])
    _dispatch(c["app"], action_body("hvbot_rc_request", _buttons(fresh[0], "hvbot_rc_request")[0], user=OP,
                                    message_ts=f"7.{seen}", response_url=fake.response_url(f"req{seen}")))
    card = fake.wait_for(lambda calls: next(iter([x for x in calls if x.path.endswith("chat.postMessage")
                                                   and _buttons(x, "hvbot_rc_approve")][cards:]), None), 15)
    approve = _buttons(card, "hvbot_rc_approve")[0]
    _dispatch(c["app"], action_body("hvbot_rc_approve", approve, user=APP1, channel="C0ONCALL", message_ts="9.9",
                                    response_url=fake.response_url(f"approve{seen}")))
    _work(c)  # the re-check, then the run it enqueues
    updates = [x for x in fake.calls_to("chat.update") if x.args.get("ts") == card.response["ts"]]
    final = json.dumps(updates[-1].args, ensure_ascii=False)
    assert "finished" in final, final[:2000]
    run = json.loads(c["conn"].hget(f"hvbot:recovery:run:{approve.split('.')[0]}", "meta"))
    assert run["kind"] == kind and run["summary"]["failed"] == 0 and run["summary"]["done"] == len(VMS), run
    cmdlet, *switches = command.split(" -")
    ran = sorted(n for e in c["lab"].command_log()[logged:]
                 if e.cmdlet == cmdlet and set(switches) <= {k for k, _ in e.parameters}
                 for k, v in e.parameters if k == "VMName" for n in (v if isinstance(v, list) else [v]))
    assert ran == sorted(VMS), (command, ran)
    return updates[-1], _lab_vms(c["lab"])


def _click(c: dict[str, Any], card: Any, kind: str) -> Callable[[], None]:
    def click() -> None:
        value = next(v for v in _buttons(card, "hvbot_recovery_command") if v.endswith(kind))
        _dispatch(c["app"], action_body(f"hvbot_recovery_command_{kind}", value, user=OP, message_ts=card.args["ts"],
                                        channel="C0ONCALL", response_url=c["fake"].response_url(f"click-{kind}")))
        c["fake"].wait_for(lambda calls: [x for x in calls if x.path.endswith(f"/click-{kind}")], 15)
    return click


def _typed(c: dict[str, Any], text: str) -> Callable[[], None]:
    return lambda: _dispatch(c["app"], slash_body(text, user=OP))


def _lab_vms(lab: Lab) -> Rows:
    return {(r["host"], r["vm"]): r for r in lab.control(None, "vms", {})["vms"]}


def _site_a_failed_over(c: dict[str, Any]) -> Any:
    c["lab"].control(None, "power_loss", {"site": "site-a"})
    card, rows = _approve_and_run(c, _typed(c, "failover --site site-a unplanned"), "unplanned",
                                  "Start-VMFailover")
    assert all(rows[("hv-b1", vm)]["replication_state"] == "FailedOverWaitingCompletion" for vm in VMS), rows
    return card


def test_complete_all_then_reverse_all_after_a_site_a_power_loss(chat: dict[str, Any]) -> None:
    c, lab = chat, chat["lab"]
    card = _site_a_failed_over(c)
    card, rows = _approve_and_run(c, _click(c, card, "complete"), "complete", "Complete-VMFailover")
    for vm in VMS:
        assert (rows[("hv-b1", vm)]["mode"], rows[("hv-b1", vm)]["replication_state"]) == ("Replica", "FailedOver")
        assert rows[("hv-b1", vm)]["state"] == "Running"
    lab.control(None, "recover", {"site": "site-a"})
    _, rows = _approve_and_run(c, _click(c, card, "reverse"), "reverse", "Set-VMReplication -Reverse")
    for vm in VMS:
        assert rows[("hv-b1", vm)]["mode"] == "Primary", rows[("hv-b1", vm)]
        assert rows[("hv-a1", vm)]["mode"] == "Replica", rows[("hv-a1", vm)]
        assert rows[("hv-b1", vm)]["state"] == "Running"


def test_cancel_all_after_a_site_failover_cancels_every_vm(chat: dict[str, Any]) -> None:
    c = chat
    card = _site_a_failed_over(c)
    _, rows = _approve_and_run(c, _click(c, card, "cancel"), "cancel", "Stop-VMFailover")
    for vm in VMS:
        replica = rows[("hv-b1", vm)]
        assert (replica["mode"], replica["replication_state"], replica["state"]) == ("Replica", "Replicating", "Off")


def test_cancel_all_after_a_site_test_failover_removes_every_test_vm(chat: dict[str, Any]) -> None:
    c = chat
    card, rows = _approve_and_run(c, _typed(c, "failover --site site-a test"), "test", "Start-VMFailover -AsTest")
    assert all(("hv-b1", f"{vm} - Test") in rows for vm in VMS), sorted(rows)
    assert _buttons(card, "hvbot_recovery_command") == ["failover --site site-a cancel"]  # a drill is only undone
    _, rows = _approve_and_run(c, _click(c, card, "cancel"), "cancel", "Stop-VMFailover")
    assert not [key for key in rows if key[1].endswith(" - Test")], sorted(rows)
    for vm in VMS:  # replication as before the test failover: the primaries run on site A, the replicas replicate
        primary, replica = rows[("hv-a1", vm)], rows[("hv-b1", vm)]
        assert (primary["mode"], primary["replication_state"], primary["state"]) == ("Primary", "Replicating",
                                                                                   "Running")
        assert (replica["mode"], replica["replication_state"], replica["state"]) == ("Replica", "Replicating", "Off")
