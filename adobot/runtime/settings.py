"""Per-bot settings: timeouts and the retry policy of the sessions a bot connects."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from adobot.rest.retry import RetryPolicy


class BotSettings(BaseModel):
    """``settings:`` in a bot file; every key is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    connect_timeout_seconds: float = Field(10.0, gt=0, le=300,
                                           description="Time to open a connection")
    read_timeout_seconds: float = Field(60.0, gt=0, le=3600,
                                        description="Time to wait for an answer")
    retry_attempts: int = Field(6, ge=1, le=20,
                                description="Attempts per request, the first included")
    retry_budget_seconds: float = Field(120.0, ge=0, le=3600,
                                        description="Time all retries of one action may wait")
    # A control room's runs of this bot (`POST /api/v1/runs`).
    retries: int = Field(0, ge=0, le=5,
                         description="Times the control room repeats a run after a system "
                                     "failure (runner lost, network, throttling, time-out); "
                                     "declare it only when a repeat is safe")
    timeout_seconds: float = Field(3600.0, gt=0, le=86400,
                                   description="Time a run in the control room may take")

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout_seconds, self.read_timeout_seconds)

    def policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.retry_attempts,
                           budget_seconds=self.retry_budget_seconds)
