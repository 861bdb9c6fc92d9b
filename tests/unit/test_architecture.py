"""The shape of the code: imports run one way (import-linter contracts in pyproject.toml), no cycles, `jobs` never
names `bot`, imports sit at module level, and comments say why rather than which issue added a line."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from importlinter.cli import lint_imports

from tests.support.paths import ROOT

PACKAGES = ("bot", "jobs", "lab")
COMMENTED = (*PACKAGES, "tests", "bench")
PROJECT_IMPORT = re.compile(r"^(bot|jobs|lab)(\.|$)")
# A function-local project import is allowed only with a reason on its line (a heavy dependency loaded on demand).
ON_DEMAND = "# on demand:"


def _sources(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def test_import_linter_contracts_are_kept() -> None:
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def test_jobs_never_names_a_bot_module_not_even_in_a_string() -> None:
    naming = re.compile(r"\bbot[./][a-z_]+")
    hits = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in _sources("jobs")
            for n, line in enumerate(p.read_text().splitlines(), 1) if naming.search(line)]
    assert hits == []


def test_project_imports_are_at_module_level() -> None:
    local = []
    for path in _sources(*PACKAGES):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or node.col_offset == 0:
                continue
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            if isinstance(node, ast.ImportFrom) and node.level:
                names = ["lab"]  # a relative import is a project import
            if any(PROJECT_IMPORT.match(n) for n in names) and ON_DEMAND not in lines[node.lineno - 1]:
                local.append(f"{path.relative_to(ROOT)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert local == []


def test_comments_do_not_tell_which_issue_added_a_line() -> None:
    history = re.compile(r"\bissue #\d+", re.IGNORECASE)
    hits = [f"{p.relative_to(ROOT)}:{n}" for p in _sources(*COMMENTED) if p.name != "test_architecture.py"
            for n, line in enumerate(p.read_text().splitlines(), 1) if history.search(line)]
    assert hits == []
