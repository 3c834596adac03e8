"""profiles/migration.yaml, typed: parity thresholds and the gated shift's steps."""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Task(_Data):
    name: str
    prompt: str
    expect: str  # a regular expression the answer should match


class Thresholds(_Data):
    min_top1_agreement: float = Field(ge=0, le=1)
    tie_logprob_gap: float = Field(ge=0)
    require_same_task_results: bool
    max_task_score_drop: float = Field(0.0, ge=0, le=1)
    min_embedding_cosine: float = Field(ge=-1, le=1)


class ParityProfile(_Data):
    top_n: int = Field(ge=1, le=20)
    max_tokens: int = Field(ge=1)
    request_timeout_s: float = Field(gt=0)
    prompts: list[str]
    extra_body: dict = {}
    tasks: list[Task]
    same_weights: Thresholds
    quantized: Thresholds


class ShiftProfile(_Data):
    steps: list[int]
    observe_s: float = Field(ge=0)
    max_error_rate: float = Field(ge=0, le=1)
    healthy_timeout_s: float = Field(gt=0)


class MigrationProfile(_Data):
    parity: ParityProfile
    shift: ShiftProfile


@lru_cache(maxsize=1)
def migration_profile() -> MigrationProfile:
    from llmctl.profiles_io import profile

    return MigrationProfile.model_validate(profile("migration.yaml"))
