"""Token counts as vLLM makes them with the base model's tokenizer: one home for the three ways a
request's tokens are counted (budgets, costs and limits all rest on them)."""

from __future__ import annotations

from typing import Any


class TokenCounter:
    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def text(self, text: str) -> int:
        """Tokens of a piece of text inside a prompt (no special tokens)."""
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def prompt(self, prompt: str) -> int:
        """Prompt tokens of a completions request (special tokens added, as vLLM does)."""
        return len(self.tokenizer.encode(prompt))

    def chat(self, messages: list[dict[str, Any]]) -> int:
        """Prompt tokens of a chat request: the rendered template with its generation prompt."""
        text = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        return self.text(text)
