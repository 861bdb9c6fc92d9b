"""`lab ...` console commands: drive the simulated Hyper-V lab (power cuts, hung hosts, silent guests) from the chat.

They talk to the lab's JSON control endpoint over HTTP (the inventory's `lab.control_url`), so they work in
`hvbot demo` and in `hvbot console` against a lab started with `hvbot lab --write-inventory`, and never reach a
real Hyper-V host: a production inventory has no control URL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

TIMEOUT_S = 10.0
NO_LAB = ("lab commands need the lab: run `hvbot demo`, or point HVBOT_INVENTORY at an inventory written by "
          "`hvbot lab --write-inventory` (it has lab.control_url)")


class LabError(RuntimeError):
    """The lab refused or could not be reached; the text says why."""


@dataclass(frozen=True)
class LabCommand:
    usage: str
    what: str
    run: Callable[["LabControl", str], str]


class LabControl:
    """A client of the lab's control endpoint (`lab/control.py`)."""

    def __init__(self, control_url: str) -> None:
        self.control_url = control_url
        self.base_url = control_url.rsplit("/", 1)[0]

    def control(self, action: str, **args: Any) -> Any:
        try:
            reply = requests.post(self.control_url, json={"action": action, **args}, timeout=TIMEOUT_S)
            body = reply.json()
        except (requests.RequestException, ValueError) as exc:
            raise LabError(f"the lab's control endpoint at {self.control_url} does not answer "
                           f"({type(exc).__name__})") from None
        if not body.get("ok"):
            raise LabError(str(body.get("error") or f"HTTP {reply.status_code}"))
        return body.get("result")

    def hosts(self) -> list[dict[str, Any]]:
        try:
            return list(requests.get(f"{self.base_url}/hosts", timeout=TIMEOUT_S).json())
        except (requests.RequestException, ValueError) as exc:
            raise LabError(f"the lab's control endpoint at {self.base_url} does not answer "
                           f"({type(exc).__name__})") from None

    def vms(self, name: str | None = None) -> list[dict[str, Any]]:
        return list(self.control("vms", **({"vm": name} if name else {}))["vms"])


def _one(arg: str, what: str) -> str:
    words = arg.split()
    if len(words) != 1:
        raise LabError(f"give one {what}")
    return words[0]


def _power_off(lab: LabControl, arg: str) -> str:
    result = lab.control("power_loss", host=_one(arg, "host"))
    return f"{result.get('host', arg)} lost power: its VMs are off and it does not answer"


def _power_on(lab: LabControl, arg: str) -> str:
    result = lab.control("recover", host=_one(arg, "host"))
    return f"{result.get('host', arg)} is powered on again; the VMs that ran start again"


def _site_down(lab: LabControl, arg: str) -> str:
    result = lab.control("power_loss", site=_one(arg, "site"))
    hosts = ", ".join(h.get("host", "?") for h in result.get("hosts", []))
    return f"power cut on {result.get('site', arg)}: {hosts} are off and do not answer"


def _site_up(lab: LabControl, arg: str) -> str:
    result = lab.control("recover", site=_one(arg, "site"))
    hosts = ", ".join(h.get("host", "?") for h in result.get("hosts", []))
    return f"{result.get('site', arg)} has power again: {hosts} are on"


def _never_heartbeat(lab: LabControl, arg: str) -> str:
    result = lab.control("heartbeat", vm=_one(arg, "VM"), never=True)
    return f"{result['vm']} on {result['host']} runs, but its guest never answers (heartbeat {result['heartbeat']})"


def _heartbeat(lab: LabControl, arg: str) -> str:
    result = lab.control("heartbeat", vm=_one(arg, "VM"), never=False)
    return f"{result['vm']} on {result['host']} answers again (heartbeat {result['heartbeat']})"


def _hang(lab: LabControl, arg: str) -> str:
    lab.control("hung", host=_one(arg, "host"))
    return f"{arg.strip()} accepts connections but never answers"


def _clear(lab: LabControl, arg: str) -> str:
    lab.control("clear", host=_one(arg, "host"))
    return f"{arg.strip()} answers normally again (hang, latency and injected faults removed)"


def _status(lab: LabControl, arg: str) -> str:
    lines = []
    for h in lab.hosts():
        state = "hung" if h.get("hung") else "up" if h.get("up") else "down"
        lines.append(f"{h['name']:<8} {h.get('site', ''):<8} {state}")
    return "\n".join(lines)


def _vms(lab: LabControl, arg: str) -> str:
    rows = lab.vms(_one(arg, "VM") if arg.strip() else None)
    return "\n".join(f"{r['vm']:<10} {r['host']:<8} {r['state']:<8} {r['mode'] or '-':<8} "
                     f"{r['replication_state'] or '-'} {r['health'] or ''}".rstrip() for r in rows) or "no such VM"


COMMANDS: dict[str, LabCommand] = {c.usage.split()[0]: c for c in (
    LabCommand("status", "every host: site, and up, down or hung", _status),
    LabCommand("vms [VM]", "every copy of a VM (or all VMs): host, state, replication mode, state, health", _vms),
    LabCommand("power-off HOST", "a power cut on one host: its VMs stop, its replication goes Critical", _power_off),
    LabCommand("power-on HOST", "power it on again: the VMs that ran start again", _power_on),
    LabCommand("site-down SITE", "a power cut on every host of a site (site-a, site-b)", _site_down),
    LabCommand("site-up SITE", "power the site on again", _site_up),
    LabCommand("never-heartbeat VM", "the VM runs but its guest never answers (heartbeat NoContact)",
               _never_heartbeat),
    LabCommand("heartbeat VM", "undo never-heartbeat", _heartbeat),
    LabCommand("hang HOST", "the host accepts connections and never answers", _hang),
    LabCommand("clear HOST", "undo hang (and any latency or injected fault)", _clear),
)}


def lab_help() -> str:
    width = max(len(c.usage) for c in COMMANDS.values()) + 4
    lines = [f"  lab {c.usage:<{width}}{c.what}" for c in COMMANDS.values()]
    return "\n".join(["Drive the lab (alerts follow within a minute: the demo's monitor sweeps every few seconds):",
                      *lines])


def run_lab_command(lab: LabControl | None, text: str) -> str:
    """One `lab ...` line (without `lab`); the answer, or a sentence saying what was wrong."""
    word, _, arg = text.strip().partition(" ")
    if word in ("", "help"):
        return lab_help()
    if lab is None:
        return NO_LAB
    command = COMMANDS.get(word)
    if command is None:
        return f"no lab command {word!r}; `lab help` lists them"
    try:
        return command.run(lab, arg)
    except LabError as exc:
        return f"lab {command.usage}: {exc}"
