"""Parameters of an augmentation run, and their validation (so the API can 422 early)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

from service.augment.filters.postprocess import FilterConfig
from service.augment.prompts import TEMPLATE_VARIABLES, validate_template
from service.augment.teacher import Sampling
from service.augment.types import StrategyName

STRATEGIES: tuple[str, ...] = get_args(StrategyName)


def estimate_tokens(text: str) -> int:
    """A tokenizer-free upper estimate of a text's tokens (3 characters a token).

    English runs about 4 characters a token on SmolLM2's tokenizer and made-up names fewer, so
    3 keeps a prompt under the teacher's context without knowing its tokenizer.
    """
    return math.ceil(len(text) / 3)


@dataclass(frozen=True)
class AugmentParams:
    """How to augment. Defaults suit the embedded 135M teacher on CPU."""

    outputs_per_unit: int = 3  # completions sampled per prompt (n); > 1 needs temperature > 0
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 128  # per local completion
    gate: bool = True  # drop outputs that contradict their source
    # Custom templates by kind ("local", "global", "decomposed_extract", "decomposed_inverse").
    templates: Mapping[str, str] = field(default_factory=dict)
    filters: FilterConfig = field(default_factory=FilterConfig)
    unit_concurrency: int | None = None  # units in flight; default twice the teacher's bound
    keep_examples: bool = True  # False: examples only go to on_unit_done (large runs)

    # decomposed
    use_rules: bool = True  # rule tables first (extraction, inverse), the teacher where they fail
    decomposed_max_tokens: int = 48

    # global
    global_max_tokens: int = 256
    context_budget_tokens: int = 6000  # prompt tokens the teacher may get (corpus + target)
    global_filters: FilterConfig = field(
        default_factory=lambda: FilterConfig(max_words=90, max_chars=700, split_sentences=False)
    )
    count_tokens: Callable[[str], int] = estimate_tokens

    def validate(self) -> list[str]:
        """Problems with these parameters, each a sentence a user can act on."""
        errors: list[str] = []
        if not 1 <= self.outputs_per_unit <= 16:
            errors.append("outputs_per_unit must be between 1 and 16")
        if not 0 <= self.temperature <= 2:
            errors.append("temperature must be between 0 and 2")
        if self.outputs_per_unit > 1 and self.temperature == 0:
            errors.append(
                "several outputs per unit need temperature > 0 (at 0 they would be identical)"
            )
        if not 0 < self.top_p <= 1:
            errors.append("top_p must be in (0, 1]")
        for name in ("max_tokens", "decomposed_max_tokens", "global_max_tokens"):
            if not 1 <= getattr(self, name) <= 4096:
                errors.append(f"{name} must be between 1 and 4096")
        if self.context_budget_tokens < 256:
            errors.append("context_budget_tokens must be at least 256")
        for kind, text in self.templates.items():
            if kind not in TEMPLATE_VARIABLES:
                errors.append(
                    f"unknown template kind {kind!r}; one of "
                    f"{', '.join(sorted(TEMPLATE_VARIABLES))}"
                )
                continue
            errors.extend(f"template {kind}: {e}" for e in validate_template(text, kind))
        return errors

    def sampling(self, max_tokens: int, stop: tuple[str, ...]) -> Sampling:
        """The teacher's sampling for a strategy that asks for `outputs_per_unit` answers."""
        return Sampling(
            n=self.outputs_per_unit,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=max_tokens,
            stop=stop,
        )

    def recorded(self) -> dict[str, Any]:
        """The parameters worth storing with a job (no callables, templates by length)."""
        return {
            "outputs_per_unit": self.outputs_per_unit,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "gate": self.gate,
            "use_rules": self.use_rules,
            "global_max_tokens": self.global_max_tokens,
            "context_budget_tokens": self.context_budget_tokens,
            "custom_templates": sorted(self.templates),
        }
