"""Evaluation modes: which served model answers and what context (if any) precedes a question."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from service.evaluate.evalset import EvalItem

ModeKind = Literal["base", "icl", "rag", "adapter", "adapter+rag"]

# Between the (context) prompt and the question, as the query API's `icl:` completions do.
CONTEXT_SEPARATOR = "\n\n"

ContextSource = str | Callable[[EvalItem], str] | None


@dataclass(frozen=True)
class Mode:
    """How to ask the model: which served model, and what context (if any) precedes a question.

    `context` is the document text put in the prompt (wrapped in
    `service.serving.icl_context.icl_system_prompt`, the query API's template): one string for every
    item (icl: the collection's documents, a shared and therefore cacheable prefix), a function of
    the item (rag and adapter+rag: its top passages; icl when the documents had to be cut per
    question), or None (base, adapter).
    """

    name: str
    kind: ModeKind
    model: str = "base"
    context: ContextSource = None

    @classmethod
    def base(cls, model: str = "base", name: str = "base") -> Mode:
        return cls(name=name, kind="base", model=model)

    @classmethod
    def icl(
        cls, context: str | Callable[[EvalItem], str], model: str = "base", name: str = "icl"
    ) -> Mode:
        return cls(name=name, kind="icl", model=model, context=context)

    @classmethod
    def rag(
        cls, context: Callable[[EvalItem], str], model: str = "base", name: str = "rag"
    ) -> Mode:
        return cls(name=name, kind="rag", model=model, context=context)

    @classmethod
    def adapter(cls, model: str, name: str | None = None) -> Mode:
        """An adapter served by vLLM under `model`; `name` is its label in reports."""
        return cls(name=name or model, kind="adapter", model=model)

    @classmethod
    def adapter_rag(cls, model: str, context: Callable[[EvalItem], str], name: str) -> Mode:
        """The adapter served under `model`, each item's top passages (the rag mode's context)
        in its prompt, in the same template as rag."""
        return cls(name=name, kind="adapter+rag", model=model, context=context)

    @property
    def shared_context(self) -> bool:
        """True when every item gets the same context (a prefix vLLM and hosted APIs cache)."""
        return isinstance(self.context, str)

    def context_for(self, item: EvalItem) -> str | None:
        if self.context is None:
            return None
        return self.context if isinstance(self.context, str) else self.context(item)
