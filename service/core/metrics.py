"""Prometheus metrics of the query path (exposed on GET /metrics)."""

from prometheus_client import Counter, Histogram

QUERIES = Counter("docadapt_queries_total", "Answered queries", ["mode"])
PROMPT_TOKENS = Counter(
    "docadapt_prompt_tokens_total", "Prompt tokens of answered queries", ["mode"]
)
COMPLETION_TOKENS = Counter(
    "docadapt_completion_tokens_total", "Completion tokens of answered queries", ["mode"]
)
LATENCY = Histogram(
    "docadapt_query_latency_seconds",
    "Query latency, request to last byte",
    ["mode"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128),
)
