"""Resume from an alert names one VM: a wildcard name is refused in the job too, not only in chat."""

from __future__ import annotations

import pytest

from jobs.monitor.actions import resume_pipeline


@pytest.mark.parametrize("name", ["*", "web*", "web0?", "web[01]", ""])
def test_a_wildcard_name_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="one VM named exactly"):
        resume_pipeline(name, resynchronize=False)


def test_one_vm_is_resumed_by_name() -> None:
    assert "VMName" in str(resume_pipeline("web01", resynchronize=True))
