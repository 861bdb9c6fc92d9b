"""Recovery plan files: YAML, one plan per file, in the directory HVBOT_RECOVERY_PLANS_DIR names.

    name: core                        # letters, digits, . _ - (used as `/hyperv plan core`)
    description: domain controllers and firewalls first
    drill: {every: 30d, at: "Sun 03:00", without_approval: false}     # optional
    groups:                           # in boot order
      - name: infrastructure
        vms: [fw01, "dc*"]            # names or fnmatch patterns (case-insensitive, as Hyper-V names are)
        site: site-a                  # optional: only VMs whose primary runs in this site (or on `host:`)
        wait_heartbeat: true          # wait for every VM's heartbeat before the next group (default true)
        delay: 30s                    # then wait this long (default 0s)
        time_limit: 15m               # the group's time limit (default 15m)
        on_failure: stop              # stop | continue (default continue)

Every problem is reported with the file and line it is on (line numbers come from ``yaml.compose``'s node marks),
all of a directory's problems at once, so one edit-and-reload fixes them. A pattern that matches no VM is not an
error here: which VMs exist is only known when a plan is resolved against the fleet (``jobs.recovery.resolve``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from yaml.nodes import MappingNode, Node, SequenceNode

from jobs.durations import parse_duration
from jobs.recovery.model import DrillSchedule, OnFailure, PlanGroup, RecoveryPlan
from jobs.recovery.settings import RecoverySettings

PLAN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# "Sun 03:00" or "03:00" (UTC); a weekday narrows a weekly or longer period to that day.
DRILL_AT = re.compile(r"^(?:(Mon|Tue|Wed|Thu|Fri|Sat|Sun)\s+)?([01]?\d|2[0-3]):([0-5]\d)$", re.IGNORECASE)
SUFFIXES = (".yaml", ".yml")
MIN_DRILL_PERIOD_S = 3600


class PlanError(ValueError):
    """Recovery plan files that cannot be used; ``problems`` holds one ``file:line: what`` sentence each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


def _seconds(value: Any, zero_ok: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("give a duration such as 30s, 5m or 1h")
    text = str(value).strip()
    if zero_ok and text in ("0", "0s"):
        return 0.0
    return parse_duration(text).total_seconds()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Group(_Strict):
    name: str
    vms: list[str]
    site: str | None = None
    host: str | None = None
    wait_heartbeat: bool = True
    delay: float = 0.0
    time_limit: float = 900.0
    on_failure: Literal["stop", "continue"] = "continue"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("a group needs a name")
        return v.strip()

    @field_validator("vms", mode="before")
    @classmethod
    def _vms(cls, v: Any) -> Any:
        if v is None or v == []:
            raise ValueError("the group is empty; list its VMs by name or pattern, e.g. vms: [dc01, \"web*\"]")
        if isinstance(v, str):
            raise ValueError("give a list, e.g. vms: [dc01, \"web*\"]")
        if isinstance(v, list) and any(not isinstance(x, str) or not x.strip() for x in v):
            raise ValueError("every entry must be a VM name or pattern (text, not empty)")
        return [x.strip() for x in v] if isinstance(v, list) else v

    @field_validator("delay", mode="before")
    @classmethod
    def _delay(cls, v: Any) -> float:
        return _seconds(v, zero_ok=True)

    @field_validator("time_limit", mode="before")
    @classmethod
    def _time_limit(cls, v: Any) -> float:
        return _seconds(v)


class _Drill(_Strict):
    every: float
    at: str | None = None
    without_approval: bool = False

    @field_validator("every", mode="before")
    @classmethod
    def _every(cls, v: Any) -> float:
        seconds = _seconds(v)
        if seconds < MIN_DRILL_PERIOD_S:  # each drill starts test copies of every VM of the plan
            raise ValueError(f"`{v}` is too often for a drill; drill at most once an hour (e.g. every: 7d)")
        return seconds

    @field_validator("at")
    @classmethod
    def _at(cls, v: str | None) -> str | None:
        if v is not None and not DRILL_AT.match(v.strip()):
            raise ValueError(f"`{v[:30]}` is not a time such as \"Sun 03:00\" or \"03:00\" (UTC)")
        return v.strip() if v is not None else None


class _Plan(_Strict):
    name: str
    description: str = ""
    drill: _Drill | None = None
    groups: list[_Group] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not PLAN_NAME.match(v):
            raise ValueError(f"`{v[:40]}` is not a plan name: use letters, digits, '.', '_' and '-' (up to 64)")
        return v


# ---- where in the file ---------------------------------------------------------------------------------------


def _line(root: Node, loc: Sequence[int | str]) -> int:
    """The 1-based line of the node at `loc`, or of the deepest node on the way when the rest is missing."""
    node = root
    for part in loc:
        if isinstance(node, MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            if match is None:
                break
            node = match
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
    return node.start_mark.line + 1


def _field(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error: Any) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "extra_forbidden":
        return f"unknown key `{loc[-1]}`; check its spelling (see the format in deploy/recovery-plans/README.md)"
    if kind == "missing":
        return f"`{loc[-1]}` is missing"
    if kind == "too_short" and loc and loc[-1] == "groups":
        return "a plan needs at least one group"
    return str(error["msg"]).removeprefix("Value error, ")


def _duplicate_keys(node: Node, source: str) -> list[str]:
    problems = []
    if isinstance(node, MappingNode):
        seen: set[Any] = set()
        for key, value in node.value:
            if key.value in seen:
                problems.append(f"{source}:{key.start_mark.line + 1}: key `{key.value}` is given twice")
            seen.add(key.value)
            problems += _duplicate_keys(value, source)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            problems += _duplicate_keys(item, source)
    return problems


def _cross_checks(plan: _Plan, root: Node, source: str) -> list[str]:
    """Two groups of one name, or one VM in two groups: the boot order would be ambiguous."""
    problems = []
    groups: dict[str, int] = {}
    vms: dict[str, str] = {}
    for gi, g in enumerate(plan.groups):
        if g.name.lower() in groups:
            problems.append(f"{source}:{_line(root, ('groups', gi, 'name'))}: groups[{gi}].name: group `{g.name}` "
                            f"is also groups[{groups[g.name.lower()]}]; give each group its own name")
        groups.setdefault(g.name.lower(), gi)
        for vi, vm in enumerate(g.vms):
            where = f"{source}:{_line(root, ('groups', gi, 'vms', vi))}: groups[{gi}].vms[{vi}]"
            if vm.lower() in vms:
                problems.append(f"{where}: `{vm}` is already in group `{vms[vm.lower()]}`; a VM belongs to one group "
                                f"of a plan")
            vms.setdefault(vm.lower(), g.name)
    return problems


# ---- loading -------------------------------------------------------------------------------------------------


def _convert(p: _Plan, source: str) -> RecoveryPlan:
    groups = tuple(PlanGroup(name=g.name, members=tuple(g.vms), site=g.site, host=g.host,
                             wait_heartbeat=g.wait_heartbeat, delay_s=g.delay, timeout_s=g.time_limit,
                             on_failure=OnFailure(g.on_failure)) for g in p.groups)
    drill = DrillSchedule(p.drill.every, p.drill.at, p.drill.without_approval) if p.drill else None
    return RecoveryPlan(name=p.name, groups=groups, description=p.description, source=source, drill=drill)


def parse_plan(text: str, source: str = "<plan>") -> RecoveryPlan:
    """One plan file's text -> RecoveryPlan; PlanError naming `source` and the line of every problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise PlanError([f"{source}{line}: not valid YAML: {getattr(exc, 'problem', None) or exc}"]) from None
    if root is None or not isinstance(data, dict):
        line = root.start_mark.line + 1 if root is not None else 1
        raise PlanError([f"{source}:{line}: a plan file holds one mapping with `name:` and `groups:`"])
    problems = _duplicate_keys(root, source)
    try:
        plan = _Plan.model_validate(data)
    except ValidationError as exc:
        problems += [f"{source}:{_line(root, e['loc'])}: {_field(e['loc'])}: {_message(e)}"
                     for e in exc.errors(include_url=False)]
        raise PlanError(problems) from None
    problems += _cross_checks(plan, root, source)
    if problems:
        raise PlanError(problems)
    return _convert(plan, source)


def plan_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())


def load_plans(directory: str | os.PathLike[str] | None = None) -> tuple[RecoveryPlan, ...]:
    """Every plan of `directory` (default: the HVBOT_RECOVERY_PLANS_DIR setting), in file-name order.

    Raises PlanError listing every problem of every file (file and line each), including two files that use
    one plan name.
    """
    folder = Path(directory) if directory is not None else RecoverySettings().plans_dir
    if not folder.is_dir():
        raise PlanError([f"recovery plans directory {folder} does not exist; create it or set "
                         f"HVBOT_RECOVERY_PLANS_DIR to the directory that holds the plan files"])
    plans: list[RecoveryPlan] = []
    problems: list[str] = []
    names: dict[str, str] = {}
    for path in plan_files(folder):
        try:
            text = path.read_text(encoding="utf-8")
            plan = parse_plan(text, str(path))
        except OSError as exc:
            problems.append(f"{path}: cannot read it: {exc.strerror}")
            continue
        except PlanError as exc:
            problems += exc.problems
            continue
        if plan.name.lower() in names:
            line = _line(yaml.compose(text, Loader=yaml.SafeLoader), ("name",))
            problems.append(f"{path}:{line}: name: plan `{plan.name}` is also defined in {names[plan.name.lower()]}; "
                            f"plan names must be unique")
            continue
        names[plan.name.lower()] = str(path)
        plans.append(plan)
    if problems:
        raise PlanError(problems)
    return tuple(plans)


def find_plan(plans: Sequence[RecoveryPlan], name: str) -> RecoveryPlan:
    """The plan called `name` (case-insensitive); PlanError naming the known plans otherwise."""
    for plan in plans:
        if plan.name.lower() == name.lower():
            return plan
    known = ", ".join(f"`{p.name}`" for p in plans) or "none (see `/hyperv plans`)"
    raise PlanError([f"no recovery plan is called `{name[:64]}`; known plans: {known}"])
