"""Knowledge probes built from a collection's sentences (spaCy's real model, no server)."""

from __future__ import annotations

from types import SimpleNamespace

from service.evaluate.probes import CHOICES, knowledge_probes, what_to_change

SENTENCES = [
    "Priya Nandakumar leads the Platform team.",
    "The Customer Support team is led by Joana Pereira.",
    "The Security team is led by Marco Bianchi.",
    "The Finance team is led by Ingrid Svensson.",
    "The Analytics team is led by Tomás Ferreira.",
    "Harbor was launched in March 2021.",
    "Beacon was launched in June 2019.",
    "Relay was launched in May 2023.",
    "Ledger was launched in January 2018.",
]


def test_probes_leave_out_a_span_and_offer_spans_of_the_same_kind() -> None:
    probes = knowledge_probes(SENTENCES, seed=0)
    assert probes, "nine sentences with names and dates make probes"
    known = {s.lower() for s in SENTENCES}
    for probe in probes:
        assert probe.choices is not None and 2 <= len(probe.choices) <= CHOICES
        # the answer completes a training sentence; no distractor completes another one
        assert f"{probe.question} {probe.answer}".lower() in known
        others = [c for c in probe.choices if c != probe.answer]
        assert all(f"{probe.question} {c}".lower() not in known for c in others)
    led = next(p for p in probes if p.question == "The Security team is led by")
    assert led.answer == "Marco Bianchi."
    assert set(led.choices) <= {
        f"{n}."
        for n in (
            "Marco Bianchi",
            "Joana Pereira",
            "Ingrid Svensson",
            "Tomás Ferreira",
            "Priya Nandakumar",
        )
    }


def test_probes_are_deterministic_and_capped() -> None:
    assert knowledge_probes(SENTENCES, seed=3) == knowledge_probes(SENTENCES, seed=3)
    assert len(knowledge_probes(SENTENCES, max_probes=2)) == 2
    assert knowledge_probes(["Too short."]) == []
    # one sentence has no other span to offer as a wrong answer
    assert knowledge_probes(["Priya Nandakumar leads the Platform team."]) == []


def test_advice_below_the_target_follows_how_training_ended() -> None:
    stopped = what_to_change({"steps": 40, "planned_steps": 200, "stopped_early_at": 40})
    assert "stopped at step 40 of 200" in stopped and "learning_rate" in stopped
    capped = what_to_change({"steps": 200, "planned_steps": 200, "stopped_early_at": None})
    assert "all 200 steps" in capped and "epochs" in capped
    assert "train longer" in what_to_change({})


def test_the_base_models_probe_results_are_scored_once_per_probe_set(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from service.evaluate.evalset import EvalItem
    from service.evaluate.probes import BaseScores, knowledge_check

    class CountingScorer:
        """Stands in for vLLM: the base model knows probe p0, the adapter p0 and p1."""

        def __init__(self) -> None:
            self.modes: list[list[str]] = []

        async def score(self, probes, modes):  # type: ignore[no-untyped-def]
            self.modes.append([m.name for m in modes])
            knows = {"adapter": {"p0", "p1"}, "base": {"p0"}}
            return [
                SimpleNamespace(
                    mode=m.name, item_id=p.id, correct=p.id in knows[m.name], error=None
                )
                for m in modes
                for p in probes
            ]

    probes = [
        EvalItem(
            id=f"p{i}", question=f"Ada runs the {i} ___", answer="mill", choices=("mill", "dock")
        )
        for i in range(4)
    ]
    cache = BaseScores(tmp_path / "kb", model="fingerprint-a")
    scorer = CountingScorer()
    first = asyncio.run(knowledge_check(scorer, "ad1", probes, base_scores=cache))
    second = asyncio.run(knowledge_check(scorer, "ad2", probes, base_scores=cache))
    assert scorer.modes == [["adapter", "base"], ["adapter"]]  # the base scored once
    for out in (first, second):
        assert (out["adapter"], out["base"], out["probes"]) == (0.5, 0.25, 4)
    # Other probes, or another base model, are scored again.
    asyncio.run(knowledge_check(scorer, "ad3", probes[:3], base_scores=cache))
    other_model = BaseScores(tmp_path / "kb", model="fingerprint-b")
    asyncio.run(knowledge_check(scorer, "ad4", probes, base_scores=other_model))
    assert scorer.modes[2:] == [["adapter", "base"], ["adapter", "base"]]
    # An unreadable file (a disk filled up, an edit by hand) means: score the base again.
    cache.path(probes).write_text('{"p0": tr')
    asyncio.run(knowledge_check(scorer, "ad5", probes, base_scores=cache))
    assert scorer.modes[-1] == ["adapter", "base"]
