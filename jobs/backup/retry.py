"""When to check a Replica VM again: the retry policy for backup readiness.

Replica-VM backup conditions are mostly transient (log apply runs every replication interval, 30 s at the
shortest), so backup tools are expected to retry [BLOG-BKP] (hyperv.md §4). A condition that needs an
operator (health Critical, a failover waiting for completion, ...) will not clear by waiting, so the policy
gives up at once on those instead of burning the budget.

The waits grow geometrically from `first_delay_s` to `max_delay_s`, so the last wait is exactly the maximum:
the default 5 attempts wait 30 s, 81 s, 221 s, 600 s (about 15.5 minutes in all). Pure: `now` is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jobs.backup.conditions import Readiness


class RetryPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    max_attempts: int = Field(default=5, ge=1, le=50)
    first_delay_s: float = Field(default=30.0, gt=0)
    max_delay_s: float = Field(default=600.0, gt=0)

    @model_validator(mode="after")
    def _max_not_below_first(self) -> RetryPolicy:
        if self.max_delay_s < self.first_delay_s:
            raise ValueError("max_delay_s must be at least first_delay_s")
        return self

    def delays(self) -> list[float]:
        """Seconds to wait after attempt 1, 2, ... (one fewer than attempts), rounded to whole seconds."""
        gaps = self.max_attempts - 1
        if gaps <= 1:
            return [float(round(self.first_delay_s))] * gaps
        ratio = self.max_delay_s / self.first_delay_s
        return [float(round(self.first_delay_s * ratio ** (i / (gaps - 1)))) for i in range(gaps)]

    def schedule(self, start: datetime) -> list[datetime]:
        """When every attempt runs if all of them are needed; the first one at `start`."""
        times = [start]
        for delay in self.delays():
            times.append(times[-1] + timedelta(seconds=delay))
        return times

    @property
    def budget_s(self) -> float:
        return sum(self.delays())


class Outcome(StrEnum):
    DONE = "done"
    RETRY = "retry"
    GIVE_UP = "give_up"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    attempt: int
    max_attempts: int
    reason: str
    retry_at: datetime | None = None
    transient: bool = False  # for GIVE_UP: the cause would clear by itself ("try later", exit code 75)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "attempt": self.attempt,
            "max_attempts": self.max_attempts,
            "reason": self.reason,
            "retry_at": self.retry_at.isoformat() if self.retry_at else None,
            "transient": self.transient,
        }


def decide(readiness: Readiness, attempt: int, now: datetime, policy: RetryPolicy | None = None) -> Decision:
    """What to do after attempt number `attempt` (1-based) produced `readiness` at `now`."""
    policy = policy or RetryPolicy()
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    limit = policy.max_attempts
    if readiness.ready:
        return Decision(Outcome.DONE, attempt, limit, readiness.summary())
    if not readiness.transient:
        return Decision(Outcome.GIVE_UP, attempt, limit, readiness.summary() + " Retrying will not help.")
    if attempt >= limit:
        return Decision(Outcome.GIVE_UP, attempt, limit, transient=True,
                        reason=f"{readiness.summary()} Still not ready after {attempt} attempts; try later.")
    delay = policy.delays()[attempt - 1]
    return Decision(Outcome.RETRY, attempt, limit, transient=True, retry_at=now + timedelta(seconds=delay),
                    reason=f"{readiness.summary()} Checking again in {delay:.0f} s "
                           f"(attempt {attempt + 1} of {limit}).")
