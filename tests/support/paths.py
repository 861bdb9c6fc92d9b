"""Where the repository and the shared reference data are, for tests at any depth."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
SHARED = ROOT.parent / "shared"  # ../shared: reference data and WinRM captures (present in CI, absent for users)
