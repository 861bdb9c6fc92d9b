"""Every Hyper-V command hvbot can build, checked against the official cmdlet syntax the way a real host binds it.

Two sources, together every command:
- every call site in ``jobs/`` that names its cmdlet literally (``single("Get-VMSnapshot", ...)``), found in the
  source and evaluated where it stands, in its own module, with sample values for the call's variables;
- the commands built from data rather than literals: failover plans of every kind, through ``build_plan`` and
  ``step_pipeline`` (``jobs/failover/run.py``), the way the executor sends them.
Each must bind as the reference says: the cmdlet exists, its parameters lie in one parameter set with every
mandatory one present (a piped object binding by value), no list goes to a scalar parameter, enum values are
members.
"""

from __future__ import annotations

import ast
import builtins
import importlib
from dataclasses import dataclass
from typing import Any

import pytest

from jobs.failover.run import step_pipeline
from jobs.hyperv import syntax
from jobs.hyperv.commands import (
    REGISTRY,
    Command,
    CommandNotAllowed,
    Pipeline,
    command,
    pipeline,
    reference_problems,
)
from tests.support.paths import ROOT
from tests.unit.jobs.test_failover_plan import all_plans

BUILDERS = {"single", "pipeline", "command"}
# Sample values for the variables of call sites; any other free name becomes a string of its own name.
SAMPLES: dict[str, Any] = {"vm": "fw01", "checkpoint": "before-upgrade", "target": "D:\\Exports\\fw01",
                           "state": "On", "resynchronize": True, "name": "nightly", "t": "Replica"}
# Modules whose commands name their cmdlet through data (a plan's steps); they are built by real functions below.
BUILT_FROM_DATA = {"jobs/failover/run.py"}


class Sample(str):
    """A stand-in for a call site's variable: a string whose attributes are samples too (``pair.vm``)."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return SAMPLES.get(attr, Sample(attr))


class SampleLocals(dict[str, Any]):
    def __init__(self, module_globals: dict[str, Any]) -> None:
        super().__init__()
        self.module_globals = module_globals

    def __missing__(self, key: str) -> Any:
        if key in SAMPLES:
            return SAMPLES[key]
        if key in self.module_globals or hasattr(builtins, key):
            raise KeyError(key)  # eval then finds the module's own name
        return Sample(key)


@dataclass(frozen=True)
class CallSite:
    module: str  # path under the project root
    line: int
    source: str
    literal: bool  # the cmdlet is named by a string literal

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.source}"


def _builder_name(node: ast.AST) -> str | None:
    """``single``/``pipeline``/``command`` called by name (``redis.pipeline()`` is an attribute: not ours)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in BUILDERS:
        return node.func.id
    return None


def _names_cmdlet_literally(node: ast.Call) -> bool:
    inner = [n for n in ast.walk(node) if _builder_name(n) in ("single", "command")]
    return all(isinstance(n, ast.Call) and n.args and isinstance(n.args[0], ast.Constant)
               and isinstance(n.args[0].value, str) for n in inner)


def call_sites() -> list[CallSite]:
    """Outermost ``single(...)``, ``pipeline(...)`` and bare ``command(...)`` calls of jobs/ (except the module
    that defines them)."""
    sites: list[CallSite] = []
    for path in sorted((ROOT / "jobs").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "jobs/hyperv/commands.py":
            continue
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        nested: set[int] = set()
        for node in ast.walk(tree):
            if _builder_name(node) in ("pipeline", "single"):
                nested.update(id(n) for n in ast.walk(node) if n is not node)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or _builder_name(node) is None or id(node) in nested:
                continue
            sites.append(CallSite(rel, node.lineno, ast.get_source_segment(text, node) or "",
                                  _names_cmdlet_literally(node)))
    return sites


def evaluate(site: CallSite) -> Pipeline:
    module = importlib.import_module(site.module.removesuffix(".py").replace("/", "."))
    value = eval(compile(ast.Expression(ast.parse(site.source, mode="eval").body), site.module, "eval"),  # noqa: S307
                 vars(module), SampleLocals(vars(module)))
    return value if isinstance(value, Pipeline) else pipeline(value) if isinstance(value, Command) else value


SITES = call_sites()


def test_the_scan_finds_the_call_sites_of_every_feature() -> None:
    modules = {s.module for s in SITES}
    for expected in ("jobs/inventory/queries.py", "jobs/failover/gather.py", "jobs/failover/run.py",
                     "jobs/backup/export.py", "jobs/backup/operations.py", "jobs/backup/tasks.py",
                     "jobs/monitor/sweep.py", "jobs/monitor/actions.py", "jobs/teaming.py", "jobs/hyperv/fleet.py"):
        assert expected in modules
    assert len(SITES) >= 20


@pytest.mark.parametrize("site", [s for s in SITES if s.literal], ids=lambda s: f"{s.module}:{s.line}")
def test_every_literal_call_site_binds_like_a_real_host(site: CallSite) -> None:
    try:
        pipe = evaluate(site)
    except CommandNotAllowed as exc:
        pytest.fail(f"{site}: {exc}")
    assert reference_problems(pipe) == [], site


def test_call_sites_built_from_data_are_covered_by_real_builders() -> None:
    dynamic = {s.module for s in SITES if not s.literal}
    assert dynamic <= BUILT_FROM_DATA, [str(s) for s in SITES if not s.literal and s.module not in BUILT_FROM_DATA]


@pytest.mark.parametrize("plan", all_plans(), ids=lambda p: p.kind.value)
def test_every_failover_step_binds_like_a_real_host(plan: Any) -> None:
    for step in plan.steps:
        assert reference_problems(step_pipeline(step)) == [], step.render()


# --- the checker itself: the old Get-VMSnapshot call is what it exists to catch ---------------------------

OLD_SNAPSHOT_QUERY = [("Get-VMSnapshot", [("VMName", ["fw01"]), ("Name", ["before-upgrade"]), ("ErrorAction", "Stop")])]


def test_the_old_snapshot_query_is_refused_list_to_a_scalar() -> None:
    assert syntax.check_pipeline(OLD_SNAPSHOT_QUERY) == [
        "Get-VMSnapshot: -Name takes one String, but a list is sent"]
    with pytest.raises(CommandNotAllowed, match="-Name takes one String"):
        command("Get-VMSnapshot", VMName=["fw01"], Name=["before-upgrade"])
    fixed = [("Get-VMSnapshot", [("VMName", ["fw01"]), ("Name", "before-upgrade"), ("ErrorAction", "Stop")])]
    assert syntax.check_pipeline(fixed) == []


@pytest.mark.parametrize("commands,problem", [
    ([("Get-VMBogus", [])], "Get-VMBogus: not in the reference"),
    ([("Get-VM", [("Nope", "x")])], "Get-VM: parameter -Nope not in the reference"),
    ([("Get-VM", [("Name", ["a"]), ("Id", "6f1c2a47-8a51-4f59-9b8e-2f3c1d7e9a10")])],
     "Get-VM -Name -Id: no parameter set takes these"),
    ([("Get-VMMemory", [])], "Get-VMMemory (no parameters): no parameter set takes these"),
    ([("Get-VMSnapshot", [("VMName", ["x"]), ("SnapshotType", "Weekly")])], "-SnapshotType Weekly is not one of"),
    ([("Set-VMNetworkAdapter", [("VMName", ["x"]), ("AllowTeaming", "On")])], "-VMName takes one String"),
    ([("Set-VMReplication", [("VMName", ["x"]), ("Reverse", "yes")])], "switch -Reverse takes no value"),
    ([("Get-VMHost", []), ("Get-VMMemory", [])], "Get-VMMemory (no parameters) with VMHost piped in: no parameter set"),
])
def test_the_checker_rejects_what_a_host_refuses(commands: list[Any], problem: str) -> None:
    assert any(problem in p for p in syntax.check_pipeline(commands)), syntax.check_pipeline(commands)


def test_piped_objects_bind_by_value() -> None:
    assert syntax.check_pipeline([("Get-VM", []), ("Get-VMMemory", [])]) == []
    assert syntax.check_pipeline([("Get-VMSnapshot", [("VMName", ["x"]), ("Name", "p")]),
                                  ("Start-VMFailover", [("AsTest", None)])]) == []


def test_the_registry_knows_each_parameters_type() -> None:
    types = {(name, p): spec.param_type(p) for name, spec in REGISTRY.items() for p in spec.params}
    assert types[("Get-VMSnapshot", "Name")].type == "String"
    assert types[("Get-VMSnapshot", "VMName")].is_array
    assert types[("Set-VMNetworkAdapter", "AllowTeaming")].members == ("On", "Off")
    assert types[("Resume-VMReplication", "Resynchronize")].is_switch
