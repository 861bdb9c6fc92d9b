"""`hvbot demo --tour`: the seed story played through the console, narrated, each step checked as it is told.

Power cut on site A (the lab), the monitor's alert, the failover preview recommending unplanned, the approval by
a second person, the failover, then site A back and replication reversed. Every step types console lines (as a
person would, echoed with `>`) and then checks what it narrated against the messages the bot posted and the lab's
own state. The tour stops at the first step that did not behave as told and exits 1 naming it: it is the demo's
smoke test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.adapters.console import Console
from bot.adapters.console_lab import LabControl, LabError
from bot.adapters.fake_slack import Call
from bot.views import failover as fv

VM = "web01"  # the seed story's VM: a web server replicated from site A to site B in the default fleet
OPERATOR, APPROVER = "U100", "U200"  # the demo's cast (bot.cli.demo.demo_roles)
FAILED_OVER = {"FailedOverWaitingCompletion", "FailedOver"}
REVERSED = {"InitialReplicationInProgress", "Replicating", "WaitingForInitialReplication"}


class StepFailed(RuntimeError):
    """The step did not behave as narrated; the text says what was seen instead."""


@dataclass
class Tour:
    console: Console
    lab: LabControl
    vm: str = VM
    primary: str = ""
    replica: str = ""
    site: str = ""
    _mark: int = field(default=0, repr=False)  # the bot's Slack calls before the current step

    def begin_step(self) -> None:
        self._mark = len(self.console.fake.calls)

    # --- playing ------------------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        self.console.out.write(text + "\n")
        self.console.out.flush()

    def play(self, line: str) -> None:
        """One console line, as a person types it; a line that never answered fails the step."""
        self.say(f"> {line}")
        self.console.handle(line)
        if self.console.unanswered:
            raise StepFailed(f"`{line}` did not answer: " + "; ".join(self.console.unanswered))

    def press(self, action_id: str, label: str) -> None:
        numbers = [n for n, b in self.console.buttons.items() if b.action_id == action_id]
        if not numbers:
            raise StepFailed(f"no {label} button was shown")
        self.play(f"press {max(numbers)}")

    def posted(self) -> list[Call]:
        """The bot's Slack calls since the step began."""
        return self.console.fake.calls[self._mark:]

    def posted_text(self) -> str:
        return "\n".join(json.dumps(c.args, ensure_ascii=False) for c in self.posted())

    def copies(self) -> dict[str, dict[str, Any]]:
        """The VM's copies in the lab, by host."""
        return {row["host"]: row for row in self.lab.vms(self.vm)}

    def hosts_up(self) -> dict[str, bool]:
        return {h["name"]: bool(h.get("up")) for h in self.lab.hosts() if h.get("site") == self.site}

    # --- the story ----------------------------------------------------------------------------------------
    def cast(self) -> None:
        copies = self.copies()
        primary = [h for h, row in copies.items() if row["mode"] == "Primary"]
        replica = [h for h, row in copies.items() if row["mode"] == "Replica"]
        if len(primary) != 1 or len(replica) != 1:
            raise StepFailed(f"{self.vm} is not replicated from one host to one other in this lab: {copies}")
        self.primary, self.replica = primary[0], replica[0]
        self.site = next(str(h.get("site")) for h in self.lab.hosts() if h["name"] == self.primary)

    def power_cut(self) -> None:
        self.play(f"lab site-down {self.site}")
        up = self.hosts_up()
        if not up or any(up.values()):
            raise StepFailed(f"the hosts of {self.site} should be down, the lab says {up}")

    def alert(self) -> None:
        # the primary's host being down inhibits the per-VM alerts it causes (Alertmanager style): one alert
        # names the unreachable hosts instead of one per replica gone Critical
        self.play(f"wait-alert {self.primary}")
        alerts = [c for c in self.posted() if str(c.args.get("channel")) == self.console.alert_channels[0]]
        if not any("unreachable" in json.dumps(c.args).lower() for c in alerts):
            raise StepFailed(f"no Critical alert saying {self.primary} is unreachable")

    def preview(self) -> None:
        self.play(f"/hyperv failover {self.vm}")
        if "Recommended: unplanned" not in self.posted_text():
            raise StepFailed("the preview did not recommend an unplanned failover")

    def request(self) -> None:
        self.play(f"/hyperv failover {self.vm} unplanned")
        self.press(fv.ACTION_REQUEST, "Request")
        if not any(b.action_id == fv.ACTION_APPROVE for b in self.console.buttons.values()):
            raise StepFailed("no approval card with an Approve button was posted")

    def approve(self) -> None:
        self.approve_as_second_person()
        copy = self.copies().get(self.replica, {})
        if copy.get("state") != "Running" or copy.get("replication_state") not in FAILED_OVER:
            raise StepFailed(f"{self.vm} should run on {self.replica}, failed over; the lab says {copy}")
        if "done" not in self.posted_text():
            raise StepFailed("the failover card never said done")

    def site_back(self) -> None:
        self.play(f"lab site-up {self.site}")
        up = self.hosts_up()
        if not up or not all(up.values()):
            raise StepFailed(f"the hosts of {self.site} should answer again, the lab says {up}")

    def reverse(self) -> None:
        self.play(f"/hyperv reverse {self.vm}")
        self.press(fv.ACTION_REQUEST, "Request")
        self.approve_as_second_person()
        copies = self.copies()
        new, old = copies.get(self.replica, {}), copies.get(self.primary, {})
        if new.get("mode") != "Primary" or new.get("replication_state") not in REVERSED or old.get("mode") != "Replica":
            raise StepFailed(f"replication should run {self.replica} → {self.primary}; the lab says {copies}")

    def approve_as_second_person(self) -> None:
        self.play(f"as {APPROVER}")
        self.press(fv.ACTION_APPROVE, "Approve")
        self.play(f"as {OPERATOR}")


@dataclass(frozen=True)
class Step:
    title: str
    story: str
    run: Callable[[Tour], None]


STEPS = (
    Step("Power cut on site A", "Site A loses power: its hosts stop, and web01's primary with them.", Tour.power_cut),
    Step("The alert", "Within seconds the monitor's sweep finds site A's hosts unreachable and posts a Critical "
         "alert to on-call (one alert for the site, not one per replica the outage turned Critical).", Tour.alert),
    Step("The preview", "The operator asks for a failover preview. The primary does not answer, so hvbot "
         "recommends an unplanned failover.", Tour.preview),
    Step("The request", "The operator previews the unplanned failover and requests it: an approval card is posted.",
         Tour.request),
    Step("The approval and the failover", "A second person, the on-call approver, approves; web01 fails over and "
         "runs on site B.", Tour.approve),
    Step("Site A is back", "Power returns to site A; its hosts answer again.", Tour.site_back),
    Step("Reverse replication", "The operator requests reverse replication, the approver approves: site B now "
         "replicates web01 back to site A.", Tour.reverse),
)


def play_tour(console: Console) -> int:
    """0 when every step behaved as narrated, else 1 (the failing step named)."""
    if console.lab is None or not console.monitoring:
        console.out.write("Tour cannot start: it needs the demo's lab and its own monitor (see the lines above).\n")
        return 1
    tour = Tour(console, console.lab)
    try:
        tour.cast()
    except (StepFailed, LabError) as exc:
        tour.say(f"Tour cannot start: {exc}")
        return 1
    tour.say(f"The seed story: {tour.vm} runs on {tour.primary} ({tour.site}) and replicates to {tour.replica}. "
             f"You are {OPERATOR} (operator); {APPROVER} is the on-call approver.")
    for number, step in enumerate(STEPS, 1):
        tour.say(f"\n=== Step {number}/{len(STEPS)}: {step.title} ===\n{step.story}")
        tour.begin_step()
        try:
            step.run(tour)
        except (StepFailed, LabError) as exc:
            tour.say(f"\nTOUR FAILED at step {number} ({step.title}): {exc}")
            return 1
        tour.say(f"✓ {step.title}: as narrated")
    tour.say(f"\nTour complete: all {len(STEPS)} steps behaved as narrated.")
    return 0
