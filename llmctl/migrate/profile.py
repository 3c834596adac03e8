"""profiles/migration.yaml, typed: parity thresholds and the gated shift's steps."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from llmctl.typed import FrozenRecord as _Data
from llmctl.typed import Meta, convert

Fraction = Annotated[float, Meta(ge=0, le=1)]


class Task(_Data):
    name: str
    prompt: str
    expect: str  # a regular expression the answer should match


class Thresholds(_Data):
    min_top1_agreement: Fraction
    tie_logprob_gap: Annotated[float, Meta(ge=0)]
    require_same_task_results: bool
    max_task_score_drop: Fraction = 0.0
    min_embedding_cosine: Annotated[float, Meta(ge=-1, le=1)]


class ParityProfile(_Data):
    top_n: Annotated[int, Meta(ge=1, le=20)]
    max_tokens: Annotated[int, Meta(ge=1)]
    request_timeout_s: Annotated[float, Meta(gt=0)]
    prompts: list[str]
    extra_body: dict = {}
    tasks: list[Task]
    same_weights: Thresholds
    quantized: Thresholds


class ShiftProfile(_Data):
    steps: list[int]
    observe_s: Annotated[float, Meta(ge=0)]
    max_error_rate: Fraction
    healthy_timeout_s: Annotated[float, Meta(gt=0)]


class MigrationProfile(_Data):
    parity: ParityProfile
    shift: ShiftProfile


@lru_cache(maxsize=1)
def migration_profile() -> MigrationProfile:
    from llmctl.profiles_io import profile

    return convert(profile("migration.yaml"), MigrationProfile)
