"""Serving: the OpenAI-compatible query API over vLLM (adapters, icl:, rag, base)."""
