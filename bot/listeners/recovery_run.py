"""The buttons of a finished recovery run's card: Complete / Cancel / Reverse all carry `/hyperv` command text for
the run's whole scope; the click passes the same gate as typed text (grammar, channel, role) and the command's
own listener answers it, which opens that operation's own preview and approval. Resume (operator) previews the
run's VMs not done; its Request opens a new approval as for any site/host/plan failover."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.grammar import OPERATOR
from bot.middleware.authorization import Gate, Needs, Requester
from bot.runtime import Runtime
from bot.views import common as views
from bot.views import recovery_run as rv
from jobs.ports import ReplyTo
from jobs.queue import enqueue, new_job_id
from jobs.recovery.resume import run_resume_preview

Answer = Callable[[dict[str, Any], BoltContext], views.View]  # bot.app.answer bound to the app's verbs
FOLLOW_UPS = ("complete", "cancel", "reverse")
_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def button_text(body: dict[str, Any], action: dict[str, Any]) -> str:
    return str(action.get("value", ""))


def register_follow_ups(app: App, gate: Gate, answer: Answer) -> None:
    """Register after every feature's verbs: a button's command is answered by whichever listener owns its verb."""

    def ack_only(ack: Ack) -> None:
        ack()

    def follow_up(body: dict[str, Any], context: BoltContext, respond: Respond) -> None:
        view = answer(body, context)
        respond(text=view.text, blocks=view.block_dicts(), response_type="ephemeral", replace_original=False)

    for kind in FOLLOW_UPS:
        app.action(f"{rv.ACTION_COMMAND}_{kind}", middleware=[gate.command(button_text)])(ack=ack_only,
                                                                                          lazy=[follow_up])


def resume(runtime: Runtime, who: Requester, run_id: str) -> views.View:
    """Enqueue the preview of the run's VMs not done; it posts its own message with a Request button."""
    if not _RUN_ID.match(run_id):
        return views.notice("This Resume button does not name a recovery run; use the button on the run's card.")
    preview_id = secrets.token_hex(8)
    job_id = new_job_id("rr")
    reply = ReplyTo(who.channel, who.user, f"resume recovery run {run_id}")
    enqueue(runtime.queue, run_resume_preview, {"preview_id": preview_id, "run_id": run_id, "reply": reply.to_dict()},
            job_id=job_id, timeout=runtime.settings.job_timeout_seconds,
            description=f"resume of recovery run {run_id} by {who.user} (preview)")
    runtime.record(who.user, who.channel, f"resume recovery run {run_id}", "accepted", "recovery preview", job_id)
    return views.notice(f"Reading the VMs of run {run_id} that are not done, for a preview …")


def register_resume(app: App, runtime: Runtime, gate: Gate) -> None:
    def ack_only(ack: Ack) -> None:
        ack()

    def on_resume(context: BoltContext, respond: Respond) -> None:
        view = resume(runtime, context["requester"], str(context["value"]))
        respond(text=view.text, blocks=view.block_dicts(), response_type="ephemeral", replace_original=False)

    may_resume = gate.click(Needs(OPERATOR, "resume a recovery plan", audit=True))
    app.action(rv.ACTION_RESUME, middleware=[may_resume])(ack=ack_only, lazy=[on_resume])
