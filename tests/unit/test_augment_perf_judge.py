"""The benchmark's own judge of reversals (independent of the engine's rule tables)."""

from __future__ import annotations

from service.benchmark.augment_perf import Fact, judge, make_facts


def test_judge_tells_reversal_from_contradiction() -> None:
    fact = Fact("kreb", "quom", 0, "higher")  # Kreb are more dangerous than quom.
    assert fact.statement == "Kreb are more dangerous than quom."
    assert judge(fact, "Quom are less dangerous than kreb.") == "correct"
    assert judge(fact, "Quom is safer than the kreb.") == "other"  # not in its table: not counted
    assert judge(fact, "Quom are more dangerous than kreb.") == "contradiction"
    assert judge(fact, "Kreb are less dangerous than quom.") == "contradiction"
    assert judge(fact, "Kreb are more dangerous than quom.") == "other"  # a copy, no reversal
    dim = Fact("morv", "jolp", 1, "lower")  # Morv are dimmer than jolp.
    assert judge(dim, "Jolp are brighter than morv.") == "correct"
    assert judge(dim, "Jolp are more bright than morv.") == "correct"
    assert judge(dim, "Jolp are dimmer than morv.") == "contradiction"


def test_facts_are_balanced_and_distinct() -> None:
    facts = make_facts(30, seed=7)
    assert sum(f.direction == "higher" for f in facts) == 15
    names = [n for f in facts for n in (f.left, f.right)]
    assert len(set(names)) == len(names) == 60
    assert len({f.dim for f in facts}) == 10


def test_teacher_comparison_reports_every_run_the_medians_and_the_speedup() -> None:
    from service.benchmark.teacher_perf import summarize

    def run(global_tps: float, local_tps: float) -> dict:
        return {
            "global": {"tokens_per_second": global_tps},
            "local": {"tokens_per_second": local_tps},
        }

    out = summarize(
        {
            "serving": [run(50, 60), run(56, 70), run(53, 64)],
            "teacher": [run(160, 240), run(170, 250), run(150, 260)],
        },
        "float32",
        "bfloat16",
    )
    assert out["serving_global_tokens_per_second"] == [50, 56, 53]
    assert (out["serving_global_median"], out["teacher_global_median"]) == (53, 160)
    assert out["global_speedup"] == round(160 / 53, 2) and out["local_speedup"] == round(
        250 / 64, 2
    )
    assert "LoRA off" in out["teacher"] and "bfloat16" in out["teacher"]
    assert out["serving"].startswith("float32, LoRA on")
