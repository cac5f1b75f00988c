"""`docadapt perf load`'s arithmetic and the archive it imports adapters with."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.peft_validation import safe_extract_archive
from service.benchmark.load_perf import adapter_archive, format_report, latency_summary


def test_latency_summary_reports_percentiles_in_seconds() -> None:
    summary = latency_summary([float(s) for s in range(1, 101)])
    assert summary == {"n": 100, "p50_s": 50.5, "p95_s": 95.05, "max_s": 100.0}
    assert latency_summary([]) == {"n": 0}


def test_the_archive_extracts_to_the_adapter_folder(tmp_path: Path) -> None:
    folder = tmp_path / "lora"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"r": 8}')
    (folder / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    out = safe_extract_archive(adapter_archive(folder), tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    assert (out / "adapter_config.json").read_text() == '{"r": 8}'


@pytest.mark.parametrize("errors", [0, 2])
def test_the_report_names_errors_and_latencies(errors: int) -> None:
    result = {
        "queries": 6,
        "concurrency": 6,
        "models": ["a", "icl:c"],
        "max_tokens": 8,
        "errors": errors,
        "error_messages": [f"a: HTTP 429 slow down {i}" for i in range(errors)],
        "wall_s": 2.0,
        "queries_per_s": 3.0,
        "generated_tokens_per_s": 24.0,
        "latency": {"all": latency_summary([0.5, 1.0]), "adapter": latency_summary([0.5])},
    }
    report = format_report(result)
    assert f"{errors} errors in 2.0 s" in report
    assert "adapter     1    0.50    0.50    0.50" in report
    assert report.count("error: ") == errors


def test_the_stack_ratios_divide_the_replica_set_by_one_replica() -> None:
    from service.benchmark.load_stack import format_stack_report, ratios

    def burst(qps: float, tps: float, p95: float) -> dict:
        return {
            "queries": 40, "concurrency": 20, "models": ["a", "icl:c"], "max_tokens": 16,
            "errors": 0, "error_messages": [], "wall_s": 40 / qps, "queries_per_s": qps,
            "generated_tokens_per_s": tps,
            "latency": {"all": {"n": 40, "p50_s": p95 / 2, "p95_s": p95, "max_s": p95}},
        }  # fmt: skip

    one, two = burst(1.0, 16.0, 10.0), burst(1.8, 28.8, 6.0)
    assert ratios(one, two) == {"queries_per_s": 1.8, "generated_tokens_per_s": 1.8, "p95_s": 0.6}
    report = format_stack_report(
        {"replicas": 2, "one_replica": one, "replica_set": two, "ratio": ratios(one, two)}
    )
    assert "2 replicas / one: throughput x1.8 (queries/s), x1.8 (tokens/s); p95 x0.6" in report
