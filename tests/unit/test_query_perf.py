"""The query benchmark's pure parts: its synthetic collections and its report."""

from __future__ import annotations

from service.benchmark.query_collections import synthetic_collection as make
from service.benchmark.query_perf import ModeStats, QueryBenchmarkResult, format_report


def words(text: str) -> int:
    return len(text.split())


def test_synthetic_collections_reach_the_size_and_differ_by_seed() -> None:
    a, facts_a = make("run1-0", 600, words)
    again, _ = make("run1-0", 600, words)
    b, _ = make("run1-1", 600, words)
    assert a == again  # deterministic for a seed
    assert a[0].text != b[0].text  # differs from the first passage on: no shared cached prefix
    total = sum(p.token_count + 1 for p in a)  # +1: the line break between passages
    assert 600 <= total < 600 + 3 * 25
    assert all(f.sentence() in " ".join(p.text for p in a) for f in facts_a)


def test_report_states_ratios_against_targets() -> None:
    def stats(mode: str, latency: float, prompt: int) -> ModeStats:
        return ModeStats(mode, [latency, latency * 1.2], [prompt, prompt], [32, 32])

    result = QueryBenchmarkResult(
        vllm_url="http://v",
        adapter="perf-x",
        adapter_made_here=True,
        context_tokens=4000,
        max_tokens=32,
        adapter_stats=stats("adapter", 1.0, 45),
        icl_cold=stats("icl_cold", 10.0, 4100),
        icl_warm=stats("icl_warm", 2.0, 4100),
        base_stats=stats("base", 0.9, 45),
    )
    assert round(result.latency_ratio_cold, 3) == 0.1
    assert round(result.latency_ratio_warm, 3) == 0.5
    assert round(result.prompt_token_ratio, 1) == 91.1
    report = format_report(result)
    assert round(result.adapter_over_base, 3) == 1.111
    assert "1/10.0" in report
    assert "(target <= 0.15: met; an adapter as cheap as base: 0.09" in report
    assert "(target <= 0.5: met; an adapter as cheap as base: 0.45" in report
    assert "1.111  (target <= 1.2: met)" in report
    assert "91.1x" in report and "(target >= 20x: met)" in report
    data = result.as_dict()
    assert data["latency_target_met"] and data["prompt_target_met"]
    assert data["warm_target_met"] and data["adapter_over_base_target_met"]
