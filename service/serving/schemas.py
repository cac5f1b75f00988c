"""What the query routes answer: OpenAI's formats, plus docadapt's `docadapt` field that says
how the answer was made (mode, adapter, the context it put in the prompt)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ModelPublic(BaseModel):
    id: str = Field(description="base, icl:<collection id>, or a ready adapter's name.")
    object: Literal["model"] = "model"
    owned_by: str = Field(description="docadapt for base; else the workspace.")


class ModelsPublic(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelPublic]


class TokenUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int | None = None
    total_tokens: int


class AnswerInfo(BaseModel):
    """How docadapt answered: the mode, and for icl/rag the context it put in the prompt."""

    mode: str = Field(description="adapter, icl, rag, adapter+rag or base.")
    adapter: str | None = None
    collection_id: str | None = None
    context_truncated: bool | None = None
    passages_used: int | None = None
    passages_total: int | None = None
    context_tokens: int | None = None
    top_k: int | None = None


class ChatMessage(BaseModel):
    role: str
    content: str | None


class ChatChoice(BaseModel):
    index: int
    message: ChatMessage
    finish_reason: str | None
    logprobs: dict[str, Any] | None = None


class ChatCompletion(BaseModel):
    """OpenAI's chat completion object."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str = Field(description="The `model` the request named.")
    choices: list[ChatChoice]
    usage: TokenUsage | None
    docadapt: AnswerInfo


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: str | None
    logprobs: dict[str, Any] | None = None


class Completion(BaseModel):
    """OpenAI's text completion object."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str = Field(description="The `model` the request named.")
    choices: list[CompletionChoice]
    usage: TokenUsage | None
    docadapt: AnswerInfo
