"""The JEA files: generated from the registry, and the committed deploy/jea copy kept in sync."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from bot.cli.jea import jea_command
from jobs.hyperv.commands import REGISTRY
from jobs.hyperv.jea import render_psrc, render_pssc

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy" / "jea"


def _visible(psrc: str) -> dict[str, set[str]]:
    """Cmdlet -> parameter names, read back from the generated VisibleCmdlets block."""
    out: dict[str, set[str]] = {}
    for block in re.split(r"@\{ Name = 'Hyper-V\\", psrc)[1:]:
        name = block.split("'", 1)[0]
        out[name] = set(re.findall(r"@\{ Name = '([A-Za-z]+)'", block))
    return out


def test_psrc_exposes_exactly_the_registry() -> None:
    visible = _visible(render_psrc())
    expected = {n: set(s.params) | {f.pipeline for f in s.forms if f.pipeline} for n, s in REGISTRY.items() if s.jea}
    assert visible == expected
    assert "Select-Object" not in render_psrc()  # JEA's own restricted proxy stays; hvbot never sends it there
    assert "ValidateSet = 'Standard', 'Recovery'" in render_psrc()


def test_pssc_is_restricted() -> None:
    pssc = render_pssc("LAB\\bots")
    assert "SessionType         = 'RestrictedRemoteServer'" in pssc
    assert "RoleDefinitions     = @{ 'LAB\\bots' = @{ RoleCapabilities = 'HvBotOperator' } }" in pssc


def test_cli_output_matches_committed_copy(tmp_path: Path) -> None:
    result = CliRunner().invoke(jea_command, ["--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(DEPLOY) for p in DEPLOY.rglob("*") if p.is_file())
    assert generated == committed
    for rel in generated:
        assert (tmp_path / rel).read_text() == (DEPLOY / rel).read_text(), f"deploy/jea/{rel} is stale: run hvbot jea"
