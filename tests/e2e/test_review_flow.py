"""Issue 12's path as a user walks it: a handbook uploaded as PDF, DOCX, Markdown and text,
augmented with the default strategies by a real worker, its statements read with their scores
and sources, some rejected in bulk and some approved, and an adapter trained on the approved
ones only; its lineage says what it trained on."""

from __future__ import annotations

import json

import pytest

from tests.e2e.service_fixtures import LiveService
from tests.fixtures import documents as fx

pytestmark = pytest.mark.e2e

POLICIES = (
    "Every employee must complete the security training within 30 days.",
    "The Finance team approves expenses over 500 euros.",
)
TOOLS = (
    "Tidemark is the dashboard the Analytics team uses to analyse shipment data.",
    "Harbor is an internal tool for deploying services.",
    "Corvex is an internal tool.",
    "Customers see the location of each shipment on a map.",
)
TEAMS = (
    "Priya Nandakumar leads the Platform team.",
    "All internal tools are maintained by the Platform team.",
)
OFFICES = ("The Lisbon office is led by Marta Silva.", "It has 40 staff.")
TINY = {"max_steps": 6, "batch_size": 4, "max_seq_length": 64, "rank": 8, "alpha": 16}


def test_augment_review_and_train_on_approved(live_service: LiveService, start_worker) -> None:
    svc = live_service
    auth = svc.new_workspace()
    col = svc.client.post("/v1/collections", json={"name": "handbook"}, headers=auth).json()["id"]
    files = [
        ("files", ("policies.pdf", fx.pdf_document(POLICIES), "application/pdf")),
        (
            "files",
            (
                "tools.docx",
                fx.docx_document(TOOLS),
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            ),
        ),
        ("files", ("teams.md", fx.markdown_document(TEAMS), "text/markdown")),
        ("files", ("offices.txt", fx.text_document(OFFICES), "text/plain")),
    ]
    r = svc.client.post(f"/v1/collections/{col}/documents", files=files, headers=auth)
    assert r.status_code == 201, r.text

    aug = svc.client.post(f"/v1/collections/{col}/augmentations", json={}, headers=auth).json()
    assert aug["params"]["strategies"] == ["decomposed", "linked", "qa"]
    start_worker()
    job = svc.wait_job(auth, aug["job"]["id"])
    assert job["status"] == "succeeded", job
    stats = svc.client.get(f"/v1/augmentations/{aug['id']}", headers=auth).json()["stats"]
    assert 0.5 < stats["estimated_precision"] <= 1

    page = svc.client.get(
        f"/v1/augmentations/{aug['id']}/examples?format=json&limit=100", headers=auth
    ).json()
    by_text = {e["text"]: e for e in page["data"] if e["strategy"] != "qa"}
    # What the rules make of these sentences, each with its source and a score.
    passive = by_text["The security training must be completed by every employee within 30 days."]
    assert passive["source_text"] == POLICIES[0] and passive["score"] > 0.8
    assert not passive["flagged"]
    # A moved phrase ending in "on a map" may have taken the verb's words: flagged.
    risky = by_text["The location of each shipment on a map is seen by customers."]
    assert risky["flagged"] and risky["score"] < passive["score"]
    assert "The Analytics team uses Tidemark to analyse shipment data." in by_text
    # "It has 40 staff." after "The Lisbon office is led by Marta Silva.": the pronoun resolved
    assert by_text["The Lisbon office has 40 staff."]["provenance"]["detail"]["rewrite"] == (
        "resolved"
    )
    inherited = by_text["Corvex is maintained by the Platform team."]
    assert inherited["strategy"] == "linked" and len(inherited["provenance"]["unit_ids"]) == 2
    assert page["counts"]["pending"] == page["total"] == len(page["data"])

    # Reject every linked statement in bulk, approve two decomposed ones.
    r = svc.client.post(
        f"/v1/augmentations/{aug['id']}/review",
        json={"decision": "reject", "filter": {"strategy": "linked"}},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    rejected = r.json()["updated"]
    assert rejected == sum(1 for e in page["data"] if e["strategy"] == "linked") > 0
    # qa: the fact as the answer to the question that asks for it, trained as a chat turn
    asked = {
        e["provenance"]["detail"]["question"]: e for e in page["data"] if e["strategy"] == "qa"
    }
    platform = asked["Who leads the Platform team?"]
    assert platform["text"] == "Priya Nandakumar leads the Platform team."
    assert platform["source_text"] == TEAMS[0] and not platform["flagged"]
    approved = [
        passive["id"],
        by_text["The Platform team is led by Priya Nandakumar."]["id"],
        platform["id"],
    ]
    for example_id in approved:
        r = svc.client.post(
            f"/v1/augmentations/{aug['id']}/examples/{example_id}/review",
            json={"decision": "approve", "note": "read and true"},
            headers=auth,
        )
        assert r.status_code == 200 and r.json()["review"] == "approved", r.text
    # Rejection is a state: the statements are still there.
    lines = svc.client.get(f"/v1/augmentations/{aug['id']}/examples", headers=auth).text
    assert len(lines.splitlines()) == page["total"]
    assert sum(json.loads(line)["review"] == "rejected" for line in lines.splitlines()) == rejected

    r = svc.client.post(
        f"/v1/collections/{col}/adapters",
        json={
            "name": "handbook-approved",
            "augmentation_id": aug["id"],
            "examples": "approved",
            "hyperparameters": TINY,
        },
        headers=auth,
    )
    assert r.status_code == 201, r.text
    adapter = r.json()
    job = svc.wait_job(auth, adapter["job"]["id"])
    assert job["status"] == "succeeded", job
    adapter = svc.client.get(f"/v1/adapters/{adapter['id']}", headers=auth).json()
    assert adapter["status"] == "ready", adapter
    assert adapter["review"]["examples"] == "approved"
    assert adapter["review"]["trained_examples"] == len(approved)
    assert adapter["review"]["excluded_rejected"] == rejected
    # The knowledge check: probes from its own documents, scored for it and for the base model.
    knowledge = adapter["metrics"]["knowledge"]
    assert knowledge["probes"] > 0 and 0 <= knowledge["base"] <= 1
    assert 0 <= knowledge["adapter"] <= 1 and knowledge["summary"].startswith("knows ")
    assert ("flag" in knowledge) == (knowledge["adapter"] < knowledge["target"])
    # ... and the question it was trained to answer, asked as a chat request
    questions = knowledge["questions"]
    assert questions["probes"] == 1 and questions["adapter"] in (0, 1)
    assert (
        f"answers {questions['adapter']:.0%} of 1 question it was trained to answer in chat "
        f"(base {questions['base']:.0%})"
    ) in knowledge["summary"]
    counts = adapter["metrics"]["example_counts"]
    # the held-out split may take one of the two approved statements
    assert len(approved) in (counts["augmented"], counts["augmented"] + counts["validation"])

    # An eval set written from the same documents, then an evaluation whose report shows the
    # adapter's knowledge check beside its accuracy.
    r = svc.client.post(
        f"/v1/collections/{col}/evalsets",
        json={"name": "written", "generate": {"max_items": 8}},
        headers=auth,
    )
    assert r.status_code == 202, r.text
    evalset = r.json()
    assert svc.wait_job(auth, evalset["job"]["id"])["status"] == "succeeded"
    evalset = svc.client.get(f"/v1/evalsets/{evalset['id']}", headers=auth).json()
    assert evalset["status"] == "ready" and evalset["item_count"] > 0, evalset
    r = svc.client.post(
        "/v1/evaluations",
        json={
            "collection_id": col,
            "evalset_id": evalset["id"],
            "modes": ["base", "adapter"],
            "adapter_ids": [adapter["id"]],
            "measure_latency": False,
        },
        headers=auth,
    )
    assert r.status_code == 201, r.text
    ev = r.json()
    assert svc.wait_job(auth, ev["job"]["id"], timeout=900)["status"] == "succeeded"
    report = svc.client.get(f"/v1/evaluations/{ev['id']}/report", headers=auth).json()
    assert report["knowledge"] == {"handbook-approved": knowledge}
    markdown = svc.client.get(
        f"/v1/evaluations/{ev['id']}/report", params={"format": "md"}, headers=auth
    ).text
    assert f"handbook-approved {knowledge['summary']}" in markdown
