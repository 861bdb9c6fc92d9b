"""App Home through the real HTTP front: a signed Events API request (`event_callback`, `app_home_opened`) makes
hvbot publish the user's Home view to the fake Slack (views.publish); the view passes slack_sdk validation, shows
the firing alert and the pending approval, and carries the approval card's own buttons for an approver only.
A click on those buttons from Home goes through the same gate and the same atomic decision as one on the card."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

from slack_bolt import App
from slack_sdk.models.views import View

from bot.app import build_app
from bot.delivery.cards import approval_store
from bot.runtime import build_runtime
from bot.settings import Settings
from bot.listeners.home import publisher as home_publisher
from bot.views import failover as fv
from jobs.failover.approvals import ApprovalStore
from jobs.keys import HOME_RECENT_KEY
from tests.integration.bot.test_monitor_sweep import World, r, slack, world  # noqa: F401  # fixtures
from tests.support.fixtures_slack import BOT_TOKEN, SIGNING_SECRET
from tests.support.http_clicks import front

OPERATOR, VIEWER, APPROVER = "U100", "U200", "U300"
JSON = "application/json"


def _settings(w: World) -> Settings:
    return Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, slack_api_url=w.slack.api_url,
                    queue="hvbot-home-test", channel_post_interval_seconds=0, operators=[OPERATOR],
                    viewers=[VIEWER], approvers=[APPROVER])


def _app(w: World) -> App:
    settings = _settings(w)
    return build_app(settings, runtime=build_runtime(settings, connection=w.r))


def home_opened(user: str) -> str:
    return json.dumps({
        "token": "legacy", "team_id": "T0HVBOT", "api_app_id": "A0HVBOT", "type": "event_callback",
        "event_id": f"Ev{user}{time.monotonic_ns()}", "event_time": int(time.time()),
        "event": {"type": "app_home_opened", "user": user, "channel": f"D{user}", "tab": "home",
                  "event_ts": f"{time.time():.6f}"},
    })


def home_click(action_id: str, value: str, user: str) -> str:
    """A button on the Home tab, as Slack sends it: a view container, no channel, no response_url."""
    payload = {
        "type": "block_actions", "user": {"id": user, "username": user.lower(), "team_id": "T0HVBOT"},
        "api_app_id": "A0HVBOT", "team": {"id": "T0HVBOT"}, "trigger_id": "1.2.3",
        "container": {"type": "view", "view_id": "V1"}, "view": {"id": "V1", "type": "home", "callback_id": ""},
        "actions": [{"action_id": action_id, "block_id": "b1", "type": "button", "value": value,
                     "action_ts": "1.2"}],
    }
    return "payload=" + quote(json.dumps(payload))


def _published(w: World, user: str) -> dict[str, Any]:
    call = w.slack.wait_for(lambda calls: next((c for c in reversed(calls) if c.method == "views.publish"
                                                and c.args.get("user_id") == user), None), 30)
    view = call.args["view"]
    View(**view).validate_json()  # slack_sdk's own checks: type, 1..100 blocks, each block's limits
    return dict(view)


def _actions(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]


def _pending_failover(w: World) -> tuple[ApprovalStore, Any]:
    store = approval_store(_settings(w), w.r)
    params = {"kind": "planned", "vm": "vm-000-0001", "point": None, "primary": "hv-000", "replica": "hv-001",
              "signature": "sig"}
    return store, store.request("failover", params, OPERATOR, "C100", ttl_s=900)


def _firing_alert(w: World) -> None:
    w.set("hv-000", "vm-000-0000", health="Critical")
    w.sweep(0)
    w.tick(30)


def test_approver_home_shows_the_alert_and_the_approval_with_buttons(world: Any) -> None:
    w = world(2, 2)
    _firing_alert(w)
    _, approval = _pending_failover(w)
    with front(_app(w)) as f:
        status, _ = f.send_json(home_opened(APPROVER))
        assert status == 200
        view = _published(w, APPROVER)
    text = json.dumps(view)
    assert view["type"] == "home"
    assert "vm-000-0000" in text and "Alerts firing" in text  # the firing alert, by VM
    assert "planned failover of vm-000-0001" in text  # the approval waiting for this approver
    buttons = {e["action_id"]: e["value"] for e in _actions(view)}
    assert buttons == {fv.ACTION_APPROVE: approval.button_value, fv.ACTION_REJECT: approval.button_value}
    assert "Hosts answering:* 2 of 2" in text


def test_viewer_and_requester_get_no_operator_buttons(world: Any) -> None:
    w = world(2, 2)
    _firing_alert(w)
    _pending_failover(w)
    with front(_app(w)) as f:
        f.send_json(home_opened(VIEWER))
        viewer = _published(w, VIEWER)
        f.send_json(home_opened(OPERATOR))
        requester = _published(w, OPERATOR)
    assert _actions(viewer) == [] and _actions(requester) == []
    assert "vm-000-0000" in json.dumps(viewer)  # the fleet and alerts are still there to look at
    assert "Your requests waiting for an approver" in json.dumps(requester)


def test_a_home_click_is_decided_like_a_card_click(world: Any) -> None:
    """From Home, the requester approving their own request and a viewer approving are refused by the same store
    decision as on the card; the refusal arrives as a direct message (Home has no response_url)."""
    w = world(1, 1)
    store, approval = _pending_failover(w)
    with front(_app(w)) as f:
        for user in (OPERATOR, VIEWER):
            status, _ = f.send(home_click(fv.ACTION_APPROVE, approval.button_value, user))
            assert status == 200
    dms = w.slack.wait_for(lambda calls: [c for c in calls if c.method == "chat.postMessage"
                                          and str(c.args.get("channel", "")).startswith("D")] or None, 30)
    w.slack.wait_for(lambda calls: len([c for c in calls if c.method == "chat.postMessage"
                                        and str(c.args.get("channel", "")).startswith("D")]) >= 2, 30)
    assert all("Not approved" in str(c.args.get("text")) for c in dms)
    current = store.get(approval.id)
    assert current is not None and current.status == "pending"
    refused = {(e.user, e.detail.split(":")[0]) for e in w_audit(w) if e.outcome == "refused"}
    assert refused == {(OPERATOR, "self_approval"), (VIEWER, "not_approver")}  # the store's audited refusals


def w_audit(w: World) -> list[Any]:
    return list(_app(w).runtime.audit.recent(20))  # type: ignore[attr-defined]


def test_recent_home_views_follow_the_sweeps_and_the_approvals(world: Any) -> None:
    """After a sweep stores new results (or an approval is requested), the views of users who opened Home recently
    are published again, once; nothing changed, nothing is sent."""
    w = world(2, 2)
    w.sweep(0)
    publisher = home_publisher(_app(w).runtime)  # type: ignore[attr-defined]
    publisher.opened(APPROVER)
    publisher.opened(VIEWER)
    assert publisher.refresh_after_sweep() == 2  # the first pass: nothing was refreshed before
    assert publisher.refresh_after_sweep() == 0
    w.set("hv-000", "vm-000-0000", health="Critical")
    w.sweep(60)  # a new sweep result
    assert publisher.refresh_after_sweep() == 2
    assert "vm-000-0000" in json.dumps(_published(w, VIEWER))
    _pending_failover(w)
    assert publisher.refresh_after_sweep() == 2
    assert _actions(_published(w, APPROVER)) and not _actions(_published(w, VIEWER))
    assert w.r.zcard(HOME_RECENT_KEY) == 2
