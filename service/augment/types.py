"""Plain data the augmentation engine takes and returns (no database, no HTTP)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

# The one list of strategy names: request schema, parameters and engine all read it.
StrategyName = Literal["local", "decomposed", "global", "linked", "qa"]


@dataclass(frozen=True)
class Unit:
    """One piece of a collection to augment.

    For local and decomposed: a sentence or passage (`id` is the unit id, `document_id` its
    document). For global: a whole document (`id` is the document id, `document_id` the same),
    with `title` used in the prompt.
    """

    id: str
    document_id: str
    text: str
    title: str | None = None
    # The text just before this unit in its passage (sentence units), so a pronoun that opens
    # the unit can be resolved; empty at a passage's start.
    context: str = ""


@dataclass
class Example:
    """One generated training statement with its provenance."""

    text: str
    strategy: StrategyName
    document_id: str
    unit_ids: list[str]
    source_text: str
    template_name: str
    template_version: str
    template_hash: str
    teacher_model: str
    sampling: dict[str, Any]
    # Tokens of the teacher request(s) that produced this example; every example of one request
    # carries the same figures (`request_ids` lets a sum count each request once).
    prompt_tokens: int
    completion_tokens: int
    request_ids: list[str]
    context_document_ids: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)  # strategy-specific (e.g. the triple)
    # Verification (service/augment/filters/verify.py): estimated probability that the statement is
    # true and grammatical, and whether it is doubtful enough to need a person's approval.
    score: float | None = None
    flagged: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class YieldStats:
    """What happened to the work of one strategy: units, requests, tokens and per-stage yield.

    generated: teacher outputs received (choices); unparsed: outputs (or, for decomposed,
    sentences) that gave no statement, by reason; parsed: statements split out or composed;
    dropped: statements dropped, by reason; kept: statements that became examples.
    parsed == kept + sum(dropped), so an empty result explains itself.
    """

    units_total: int = 0
    units_skipped: int = 0  # finished in an earlier run of a resumed job
    units_done: int = 0
    units_failed: int = 0
    requests: int = 0
    requests_failed: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    generated: int = 0
    parsed: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    unparsed: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0

    def drop(self, reason: str, count: int = 1) -> None:
        """Count a statement dropped for `reason`."""
        self.dropped[reason] += count

    def no_statement(self, reason: str, count: int = 1) -> None:
        """Count an output (or sentence) that gave no statement at all, for `reason`."""
        self.unparsed[reason] += count

    def merge(self, other: YieldStats) -> None:
        """Add another run's counts into this one (wall time adds too)."""
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.dropped.update(other.dropped)
        self.unparsed.update(other.unparsed)
        self.wall_s += other.wall_s

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["dropped"] = dict(sorted(self.dropped.items()))
        out["unparsed"] = dict(sorted(self.unparsed.items()))
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> YieldStats:
        data = dict(data)
        dropped = Counter(data.pop("dropped", {}))
        unparsed = Counter(data.pop("unparsed", {}))
        return cls(**data, dropped=dropped, unparsed=unparsed)


_COUNTS = (
    "units_total",
    "units_skipped",
    "units_done",
    "units_failed",
    "requests",
    "requests_failed",
    "retries",
    "prompt_tokens",
    "completion_tokens",
    "cached_prompt_tokens",
    "generated",
    "parsed",
    "kept",
)


@dataclass
class UnitResult:
    """The outcome of one unit: its examples and its own counts (handed to `on_unit_done`)."""

    unit_id: str
    document_id: str
    examples: list[Example]
    stats: YieldStats
    failed: bool = False
    error: str | None = None
    teacher_failing: bool = False  # failed because the teacher endpoint is (see TeacherError)


OnUnitDone = Callable[[UnitResult], Awaitable[None] | None]


@dataclass
class StrategyResult:
    """Everything a strategy run produced, and its counts."""

    strategy: StrategyName
    examples: list[Example]
    stats: YieldStats
