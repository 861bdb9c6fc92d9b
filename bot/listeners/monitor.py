"""Chat side of the replica monitor: `/hyperv replication`, `/hyperv silence`, and the alert message's buttons.

`/hyperv replication [VM|HOST] [--fresh]` answers at once from the last sweep (`jobs.monitor.sweep.load_last`) and says
how old it is; `--fresh` also queues a sweep of the host (or of every host) right away. `/hyperv silence VM|HOST
DURATION` mutes that VM's or host's alerts (`AlertEngine.silence`). Buttons: Ack and Snooze act on the message's
key; the per-VM menu shows details from the last sweep, opens the failover preview (`bot.listeners.failover`), or
queues Resume / Resync (`jobs.monitor.actions`), each checked against the clicker's role at click time.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.delivery.alert_routing import alert_rules
from bot.grammar import MAX_SILENCE, OPERATOR, VIEWER, Command, CommandError, exact_name, host_name, parse_duration
from bot.listeners import failover
from bot.listeners.verbs import Verbs
from bot.middleware.authorization import Gate, Needs, Requester
from bot.runtime import Runtime
from bot.views import alerts as alert_views
from bot.views import common as views
from bot.views.legend import legend_text
from jobs import units
from jobs.hyperv.hosts import load_inventory
from jobs.keys import SWEEP_PENDING_KEY
from jobs.monitor import heartbeat
from jobs.monitor.actions import run_resume
from jobs.monitor.chart_tasks import run_chart
from jobs.monitor.rules import short_host
from jobs.monitor.state import AlertEngine
from jobs.monitor.sweep import load_last, run_host_sweep
from jobs.ports import ReplyTo
from jobs.queue import enqueue, new_job_id
from jobs.recovery.drill_store import DrillStore

log = logging.getLogger("hvbot.monitor")

MAX_LINES = 40


def engine(runtime: Runtime) -> AlertEngine:
    return AlertEngine(runtime.redis, rules=alert_rules(runtime.settings))


def replication(runtime: Runtime, command: Command, who: Requester, body: dict[str, Any]) -> views.View:
    view = _replication(runtime, command, who.user, who.channel)
    # --fresh: the answer says to ask again once the sweep is in, and that answer brings the chart
    chart = None if command.extra.get("fresh") else chart_request(runtime, load_last(runtime.redis), command)
    if chart is None:
        return view
    kind, target, hosts = chart
    reply = ReplyTo(who.channel, who.user, command.canonical(), response_url=str(body.get("response_url", "")))
    enqueue(runtime.queue, run_chart, {"kind": kind, "target": target, "hosts": hosts, "reply": reply.to_dict()},
            timeout=120, result_ttl=300, description=f"chart of {target} for {who.user}",
            meta={"user": who.user, "channel": who.channel, "command": f"chart {target}"})
    return views.notice(f"{view.text}\nA chart of {target} follows as a file in this channel.")


def chart_request(runtime: Runtime, entries: list[dict[str, Any]],
                  command: Command) -> tuple[str, str, list[str]] | None:
    """What `/hyperv replication` charts: --all every host's health counts, a HOST its own, one VM named exactly its
    lag and health on each host that reported it; a pattern or nothing asked gets no chart."""
    hosts = _hosts(runtime, entries)
    if command.extra.get("all"):
        return "fleet", "all hosts", hosts
    target = command.args[0] if command.args else None
    if target is None or any(c in target for c in "*?["):
        return None
    host = next((h for h in hosts if short_host(h) == short_host(target)), None)
    if host is not None:
        return "fleet", host, [host]
    sides = [(e["host"], v["vm"]) for e in entries for v in e["vms"] if v["vm"].lower() == target.lower()]
    return ("vm", sides[0][1], sorted({h for h, _ in sides})) if sides else None


def silence(runtime: Runtime, command: Command, who: Requester, body: dict[str, Any]) -> views.View:
    return _silence(runtime, command, who.user, who.channel)


# ---- /hyperv replication ---------------------------------------------------------------------------------


def _drill_text(drill: dict[str, Any] | None) -> str:
    if drill is None:
        return "no successful drill"
    return f"drilled {datetime.fromtimestamp(drill['at'], UTC):%Y-%m-%d}"


def _line(entry: dict[str, Any], vm: dict[str, Any], drills: dict[str, dict[str, Any]] | None = None) -> str:
    notes = [n for n, on in (("backup window", vm["in_backup_window"]), ("failover", vm["under_failover"])) if on]
    extra = f" ({', '.join(notes)})" if notes else ""
    drilled = f" · {_drill_text(drills.get(vm['vm'].lower()))}" if drills is not None else ""
    return (f"`{vm['vm']}` on {entry['host']} · {vm['mode']} · {vm['state']} · health {vm['health']} · "
            f"lag {alert_views.lag_text(vm['lag_s'])}{drilled}{extra}")


def replication_text(entries: list[dict[str, Any]], target: str | None, now: float,
                     drills: dict[str, dict[str, Any]] | None = None) -> str:
    """``drills``: VM name (lower case) -> its last successful drill; None leaves the drill column out."""
    if not entries:
        return "No sweep has run yet: start `hvbot monitor`, or use `--fresh`."
    hosts = {short_host(e["host"]) for e in entries}
    host_pick = target is not None and short_host(target) in hosts
    lines, oldest, states = [], now, list[str]()
    for e in entries:
        if host_pick and short_host(e["host"]) != short_host(str(target)):
            continue
        vms = e["vms"] if host_pick or target is None else [
            v for v in e["vms"] if fnmatch.fnmatch(v["vm"].lower(), str(target).lower())]
        if e["error"] and (host_pick or target is None):
            lines.append(f":x: {e['error']}")  # host errors already start with the host name
        if vms or host_pick or e["error"]:
            oldest = min(oldest, e["at"])
        lines += [_line(e, v, drills) for v in vms]
        states += [str(v.get("state") or "") for v in vms]
    if not lines:
        return f"Nothing named `{target}` in the last sweep."
    more = f"\n…and {len(lines) - MAX_LINES} more lines" if len(lines) > MAX_LINES else ""
    head = f"Replication as of the last sweep ({units.duration(max(0.0, now - oldest))} ago):"
    legend = legend_text(states)
    return "\n".join([head, *lines[:MAX_LINES]]) + more + (f"\n_{legend}_" if legend else "")


def _replication(runtime: Runtime, command: Command, user: str, channel: str) -> views.View:
    target = command.args[0] if command.args else None
    now = datetime.now(UTC)
    entries = load_last(runtime.redis)
    names = sorted({v["vm"] for e in entries for v in e["vms"]})
    drills = {k.lower(): v for k, v in DrillStore(runtime.redis).last_successes("vm", names).items()}
    text = replication_text(entries, target, now.timestamp(), drills)
    text += f"\n_{heartbeat.status_line(runtime.redis, now.timestamp())[1]}_"  # is anyone still sweeping?
    if command.extra.get("fresh"):
        hosts = _hosts(runtime, entries)
        pick = [h for h in hosts if target and short_host(h) == short_host(target)] or hosts
        queued = queue_sweeps(runtime, pick, now)
        text += f"\nA fresh sweep of {units.plural(len(queued), 'host')} was queued; ask again in a few seconds."
    runtime.record(user, channel, command.canonical(), "done")
    return views.notice(text)


def _hosts(runtime: Runtime, entries: list[dict[str, Any]]) -> list[str]:
    if runtime.settings.inventory is not None:
        return load_inventory(runtime.settings.inventory).names
    return [e["host"] for e in entries]


def queue_sweeps(runtime: Runtime, hosts: list[str], now: datetime) -> list[str]:
    rules = alert_rules(runtime.settings).model_dump(mode="json")
    queued = []
    for host in hosts:
        if not runtime.redis.set(SWEEP_PENDING_KEY.format(host), now.isoformat(), nx=True, ex=300):
            continue  # a sweep of this host is already queued or running
        enqueue(runtime.queue, run_host_sweep, {"host": host, "now": now.isoformat(), "rules": rules},
                timeout=120, result_ttl=300, description=f"replica sweep of {host} (fresh)")
        queued.append(host)
    return queued


# ---- /hyperv silence -------------------------------------------------------------------------------------


def _silence(runtime: Runtime, command: Command, user: str, channel: str) -> views.View:
    usage = "Usage: `/hyperv silence VM|HOST DURATION` (DURATION like 30m, 2h, 1d; at most 7 days)"
    if len(command.args) != 2:
        return views.notice(usage)
    try:
        seconds = int(parse_duration(command.args[1], MAX_SILENCE, "a silence").total_seconds())
    except ValueError as err:
        return views.notice(f"{err}.\n{usage}")
    target = command.args[0]
    hosts = {short_host(h) for h in _hosts(runtime, load_last(runtime.redis))}
    kind = "host" if short_host(target) in hosts else "vm"
    sid = engine(runtime).silence(kind, target, seconds, datetime.now(UTC), user, reason="silenced")
    runtime.record(user, channel, command.canonical(), "done", f"silence {sid}")
    return views.notice(f"Alerts of {kind} `{target}` are silenced for {command.args[1]} (silence {sid}).")


# ---- buttons ---------------------------------------------------------------------------------------------
# Values are validated here with the grammar's own checks (the gate calls the policies below before any listener
# runs), and the buttons that change something carry one-use tokens (bot.views.alerts seals them).

MENU_VERBS = ("details", "resume", "resync", "failover")


@dataclass(frozen=True)
class MenuChoice:
    verb: str
    host: str
    vm: str


def menu_choice(runtime: Runtime, value: str) -> MenuChoice:
    """The VM menu's value `verb|host|vm`, checked as typed text is: a known verb, a host of the inventory, one VM
    named exactly (and, to act on it, one the last sweep saw on that host). Raises CommandError."""
    verb, host, vm = (value.split("|") + ["", ""])[:3]
    if verb not in MENU_VERBS or value.count("|") != 2:
        raise CommandError("This menu choice is not one hvbot offers; use the menu of the latest alert message.")
    known = {short_host(h) for h in _hosts(runtime, load_last(runtime.redis))}
    if short_host(host_name(host)) not in known:
        raise CommandError(f"`{host[:30]}` is not a host of hvbot's inventory.")
    choice = MenuChoice(verb, host, exact_name(vm))
    # The menu is only offered on VMs a sweep found; a value naming any other VM was not offered.
    seen = {v["vm"].lower() for e in load_last(runtime.redis, [host]) for v in e["vms"]}
    if verb != "details" and vm.lower() not in seen:
        raise CommandError(f"`{vm[:30]}` was not seen on {host} in the last sweep; use the latest alert's menu.")
    return choice


def snooze_choice(value: str) -> tuple[int, str]:
    """The Snooze value `seconds|message key`: capped like `/hyperv silence` (the same duration parser)."""
    seconds, _, key = value.partition("|")
    try:
        length = parse_duration(f"{seconds}s", MAX_SILENCE, "a snooze")
    except ValueError as err:
        raise CommandError(f"{err}.") from None
    return int(length.total_seconds()), key


def vm_menu_needs(runtime: Runtime) -> Callable[[dict[str, Any]], Needs]:
    """Details need a viewer; failover, resume and resync an operator (checked at click time); resume and resync
    change replication, so their options are one-use."""

    def needs(action: dict[str, Any]) -> Needs:
        choice = menu_choice(runtime, str(action.get("value", "")))
        what = f"{choice.verb} {choice.vm} --host {choice.host}"
        if choice.verb in ("resume", "resync"):
            return Needs(OPERATOR, what, audit=True, once=True)
        if choice.verb == "failover":
            return Needs(OPERATOR, what)
        return Needs(VIEWER, "replication")

    return needs


def snooze_needs(action: dict[str, Any]) -> Needs:
    seconds, key = snooze_choice(str(action.get("value", "")))
    return Needs(OPERATOR, f"alert snooze {key} {seconds}s", audit=True, once=True)


def on_ack(runtime: Runtime, who: Requester, key: str, body: dict[str, Any], respond: Respond) -> None:
    user, channel = who.user, who.channel
    done = engine(runtime).ack(key, user, datetime.now(UTC))
    runtime.record(user, channel, f"alert ack {key}", "done" if done else "gone")
    text = f"<@{user}> acknowledged this alert: no repeats until it resolves." if done else "This alert has resolved."
    respond(text=text, response_type="in_channel", replace_original=False, thread_ts=_thread(body))


def on_snooze(runtime: Runtime, who: Requester, value: str, body: dict[str, Any], respond: Respond) -> None:
    user, channel = who.user, who.channel
    seconds, key = snooze_choice(value)
    ids = engine(runtime).snooze(key, float(seconds), user, datetime.now(UTC))
    runtime.record(user, channel, f"alert snooze {key} {seconds}s", "done" if ids else "gone")
    text = (f"<@{user}> snoozed this alert for {units.duration(seconds)}." if ids else "This alert has resolved.")
    respond(text=text, response_type="in_channel", replace_original=False, thread_ts=_thread(body))


def _thread(body: dict[str, Any]) -> str | None:
    container = body.get("container")
    return container.get("message_ts") if isinstance(container, dict) else None


def on_vm_action(runtime: Runtime, who: Requester, value: str, body: dict[str, Any], respond: Respond) -> None:
    choice = menu_choice(runtime, value)
    verb, host, vm = choice.verb, choice.host, choice.vm
    if verb == "details":
        text = replication_text(load_last(runtime.redis, [host]), vm, datetime.now(UTC).timestamp())
        respond(text=text, response_type="ephemeral", replace_original=False)
    elif verb == "failover":
        view = failover.handle(runtime, Command("failover", (vm,), host=host), who, body)
        respond(text=view.text, blocks=view.blocks, response_type="ephemeral", replace_original=False)
    else:
        _queue_resume(runtime, verb, host, vm, who, str(body.get("response_url", "")))
        respond(text=f"Queued {verb} of replication for `{vm}` on {host}; the result follows here.",
                response_type="ephemeral", replace_original=False)


def _queue_resume(runtime: Runtime, verb: str, host: str, vm: str, who: Requester, url: str) -> None:
    user, channel = who.user, who.channel
    command = f"{verb} {vm} --host {host}"
    reply = ReplyTo(channel=channel, user=user, command=command, response_url=url)
    job_id = new_job_id()
    enqueue(runtime.queue, run_resume,
            {"host": host, "vm": vm, "resynchronize": verb == "resync", "reply": reply.to_dict()},
            job_id=job_id, timeout=runtime.settings.job_timeout_seconds, description=f"/hyperv {command} by {user}",
            meta={"user": user, "channel": channel, "command": command})
    runtime.record(user, channel, command, "accepted", job_id=job_id)


def register(app: App, runtime: Runtime, gate: Gate) -> Verbs:
    def ack_only(ack: Ack) -> None:
        ack()

    def ack_click(body: dict[str, Any], context: BoltContext, respond: Respond) -> None:
        on_ack(runtime, context["requester"], context["value"], body, respond)

    def snooze_click(body: dict[str, Any], context: BoltContext, respond: Respond) -> None:
        on_snooze(runtime, context["requester"], context["value"], body, respond)

    def vm_click(body: dict[str, Any], context: BoltContext, respond: Respond) -> None:
        on_vm_action(runtime, context["requester"], context["value"], body, respond)

    may_ack = [gate.click(Needs(OPERATOR, "ack", once=True))]
    app.action(alert_views.ACTION_ACK, middleware=may_ack)(ack=ack_only, lazy=[ack_click])
    may_snooze = [gate.click(snooze_needs)]
    for seconds, _ in alert_views.SNOOZE_CHOICES:
        app.action(f"{alert_views.ACTION_SNOOZE}_{seconds}", middleware=may_snooze)(ack=ack_only, lazy=[snooze_click])
    app.action(alert_views.ACTION_VM, middleware=[gate.click(vm_menu_needs(runtime))])(ack=ack_only, lazy=[vm_click])
    return {"replication": replication, "silence": silence}
