"""Knowledge probes built from a collection's sentences (spaCy's real model, no server)."""

from __future__ import annotations

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
