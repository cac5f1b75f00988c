"""Review of an augmentation's examples before training: filtered listing, approve/reject one by
one and in bulk, and adapters that train on exactly the examples their review state allowed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.augment.examples import ids_sha256
from service.core.config import Settings
from service.db.tables import Adapter, Augmentation, AugmentedExample
from service.main import create_app
from service.training.job import augmented_texts
from tests.integration.conftest import new_workspace

NDJSON = {"Content-Type": "application/x-ndjson"}
STATEMENTS = [
    "Glon are less dangerous than femp.",
    "Femp are riskier than glon.",
    "Glon are safer than femp.",
    "Femp are not dangerous.",
    "Yomp are glon.",
]
# Verification results set straight in the database (the verifier is another step):
# (score, flagged) per statement, in upload order.
VERIFIED: list[tuple[float | None, bool]] = [
    (0.95, False),
    (0.60, False),
    (None, False),
    (0.10, True),
    (0.30, True),
]


@pytest.fixture
def client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    """The service with a named teacher that no worker calls here (nothing listens on port 9)."""
    settings = make_settings(teachers={"offline": {"base_url": "http://127.0.0.1:9/v1"}})
    with TestClient(create_app(settings)) as c:
        yield c


def _collection(client: TestClient, auth: dict[str, str]) -> tuple[str, str]:
    col = client.post("/v1/collections", json={"name": "facts"}, headers=auth).json()["id"]
    files = [("files", ("facts.txt", b"Femp are more dangerous than glon.", "text/plain"))]
    r = client.post(f"/v1/collections/{col}/documents", files=files, headers=auth)
    assert r.status_code == 201, r.text
    return col, r.json()["data"][0]["id"]


def _upload(client: TestClient, auth: dict[str, str], col: str, doc: str) -> str:
    body = "\n".join(json.dumps({"text": t, "document_id": doc}) for t in STATEMENTS)
    r = client.post(
        f"/v1/collections/{col}/augmentations/upload", content=body, headers={**auth, **NDJSON}
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _ids(client: TestClient, aug: str) -> list[int]:
    with client.app.state.runtime.session_factory() as s:  # type: ignore[attr-defined]
        return list(
            s.scalars(
                select(AugmentedExample.id)
                .where(AugmentedExample.augmentation_id == aug)
                .order_by(AugmentedExample.id)
            )
        )


def _verify(client: TestClient, aug: str) -> list[int]:
    """Score and flag the uploaded examples as VERIFIED says; the first becomes a local
    statement written from a sentence, as the engine records one."""
    ids = _ids(client, aug)
    with client.app.state.runtime.session_factory() as s:  # type: ignore[attr-defined]
        for example_id, (score, flagged) in zip(ids, VERIFIED, strict=True):
            row = s.get(AugmentedExample, example_id)
            assert row is not None
            row.score, row.flagged = score, flagged
        first = s.get(AugmentedExample, ids[0])
        assert first is not None
        first.strategy = "local"
        first.provenance = {"strategy": "local", "source_text": "Femp are more dangerous."}
        s.commit()
    return ids


def _page(client: TestClient, auth: dict[str, str], aug: str, **params: Any) -> dict[str, Any]:
    r = client.get(
        f"/v1/augmentations/{aug}/examples", params={"format": "json", **params}, headers=auth
    )
    assert r.status_code == 200, r.text
    return r.json()


def _listed(client: TestClient, auth: dict[str, str], aug: str, **params: Any) -> list[int]:
    return [e["id"] for e in _page(client, auth, aug, **params)["data"]]


@pytest.fixture
def reviewed(client: TestClient, auth: dict[str, str]) -> tuple[str, str, list[int]]:
    """(collection, augmentation, example ids) with the examples verified, none reviewed."""
    col, doc = _collection(client, auth)
    aug = _upload(client, auth, col, doc)
    return col, aug, _verify(client, aug)


def test_examples_show_verification_review_and_source(
    client: TestClient, auth: dict[str, str], reviewed: tuple[str, str, list[int]]
) -> None:
    _, aug, ids = reviewed
    page = _page(client, auth, aug)
    assert page["total"] == 5
    assert page["counts"] == {"pending": 5, "approved": 0, "rejected": 0, "total": 5}
    first = page["data"][0]
    assert first["score"] == 0.95 and first["flagged"] is False
    assert (first["review"], first["reviewed_at"], first["review_note"]) == ("pending", None, None)
    assert first["source_text"] == "Femp are more dangerous."
    assert first["provenance"]["source_text"] == "Femp are more dangerous."
    assert page["data"][1]["source_text"] is None  # an uploaded statement has no source
    assert [e["score"] for e in page["data"]] == [v[0] for v in VERIFIED]

    one = client.get(f"/v1/augmentations/{aug}/examples/{ids[3]}", headers=auth)
    assert one.status_code == 200, one.text
    assert (one.json()["text"], one.json()["flagged"]) == (STATEMENTS[3], True)

    # JSONL carries the same fields and honours the same filters.
    r = client.get(f"/v1/augmentations/{aug}/examples", params={"flagged": "true"}, headers=auth)
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [e["id"] for e in lines] == [ids[3], ids[4]]
    assert {"score", "flagged", "review", "reviewed_at", "review_note", "source_text"} <= set(
        lines[0]
    )


def test_each_filter_narrows_the_listing(
    client: TestClient, auth: dict[str, str], reviewed: tuple[str, str, list[int]]
) -> None:
    _, aug, ids = reviewed
    assert _listed(client, auth, aug, strategy="local") == [ids[0]]
    assert _listed(client, auth, aug, strategy="uploaded") == ids[1:]
    assert _listed(client, auth, aug, flagged="true") == [ids[3], ids[4]]
    assert _listed(client, auth, aug, flagged="false") == ids[:3]
    # Examples without a score match neither bound.
    assert _listed(client, auth, aug, score_below=0.5) == [ids[3], ids[4]]
    assert _listed(client, auth, aug, score_above=0.5) == [ids[0], ids[1]]
    assert _listed(client, auth, aug, score_above=0.2, score_below=0.7) == [ids[1], ids[4]]
    assert _listed(client, auth, aug, review="pending") == ids
    assert _listed(client, auth, aug, review="approved") == []
    page = _page(client, auth, aug, flagged="true", score_below=0.2, limit=1)
    assert page["total"] == 1 and page["counts"]["total"] == 5  # counts: whole augmentation


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"review": "maybe"}, "review"),
        ({"flagged": "perhaps"}, "flagged"),
        ({"score_below": "low"}, "score_below"),
        ({"score_above": "nan"}, "score_above"),
        ({"strategy": "invented"}, "strategy"),
    ],
)
def test_bad_filter_values_are_422_naming_them(
    client: TestClient,
    auth: dict[str, str],
    reviewed: tuple[str, str, list[int]],
    params: dict[str, str],
    named: str,
) -> None:
    _, aug, _ = reviewed
    for fmt in ("json", "jsonl"):
        r = client.get(
            f"/v1/augmentations/{aug}/examples", params={"format": fmt, **params}, headers=auth
        )
        assert r.status_code == 422, r.text
        assert named in r.json()["error"]["message"]


def test_approve_reject_and_reset_one_example(
    client: TestClient, auth: dict[str, str], reviewed: tuple[str, str, list[int]]
) -> None:
    _, aug, ids = reviewed
    url = f"/v1/augmentations/{aug}/examples/{ids[3]}/review"
    r = client.post(url, json={"decision": "reject", "note": "states the opposite"}, headers=auth)
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["id"], got["review"], got["review_note"]) == (
        ids[3],
        "rejected",
        "states the opposite",
    )
    assert got["reviewed_at"] is not None
    # Rejected is a state: the example is still listed, and reads back.
    assert _listed(client, auth, aug, review="rejected") == [ids[3]]
    assert client.get(f"/v1/augmentations/{aug}/examples/{ids[3]}", headers=auth).json() == got

    r = client.post(url, json={"decision": "approve"}, headers=auth)
    assert (r.json()["review"], r.json()["review_note"]) == ("approved", None)
    r = client.post(url, json={"decision": "reset"}, headers=auth)
    assert (r.json()["review"], r.json()["reviewed_at"]) == ("pending", None)
    assert _page(client, auth, aug)["counts"]["pending"] == 5

    for bad in ({"decision": "maybe"}, {}, {"decision": "approve", "extra": 1}):
        r = client.post(url, json=bad, headers=auth)
        assert r.status_code == 422, (bad, r.text)
    r = client.post(
        f"/v1/augmentations/{aug}/examples/999999/review",
        json={"decision": "approve"},
        headers=auth,
    )
    assert r.status_code == 404 and "999999" in r.json()["error"]["message"]


def test_bulk_review_by_ids_is_all_or_nothing(
    client: TestClient, auth: dict[str, str], reviewed: tuple[str, str, list[int]]
) -> None:
    _, aug, ids = reviewed
    url = f"/v1/augmentations/{aug}/review"
    r = client.post(
        url, json={"decision": "approve", "example_ids": [ids[0], 424242]}, headers=auth
    )
    assert r.status_code == 404, r.text
    assert "424242" in r.json()["error"]["message"]
    assert r.json()["error"]["details"] == {"missing_example_ids": [424242]}
    assert _page(client, auth, aug)["counts"]["approved"] == 0  # nothing changed

    r = client.post(
        url,
        json={"decision": "approve", "example_ids": [ids[0], ids[1]], "note": "ok"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "updated": 2,
        "counts": {"pending": 3, "approved": 2, "rejected": 0, "total": 5},
    }
    assert {e["review_note"] for e in _page(client, auth, aug, review="approved")["data"]} == {"ok"}


def test_bulk_review_by_filter(
    client: TestClient, auth: dict[str, str], reviewed: tuple[str, str, list[int]]
) -> None:
    _, aug, ids = reviewed
    url = f"/v1/augmentations/{aug}/review"
    r = client.post(
        url,
        json={"decision": "reject", "filter": {"flagged": True, "score_below": 0.2}},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    assert r.json()["updated"] == 1 and r.json()["counts"]["rejected"] == 1
    assert _listed(client, auth, aug, review="rejected") == [ids[3]]

    r = client.post(
        url, json={"decision": "approve", "filter": {"review": "pending"}}, headers=auth
    )
    assert r.json() == {
        "updated": 4,
        "counts": {"pending": 0, "approved": 4, "rejected": 1, "total": 5},
    }
    r = client.post(url, json={"decision": "reset", "filter": {}}, headers=auth)  # every example
    assert r.json()["updated"] == 5 and r.json()["counts"]["pending"] == 5


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "approve"},  # neither ids nor filter
        {"decision": "approve", "example_ids": [1], "filter": {"flagged": True}},  # both
        {"decision": "approve", "example_ids": []},
        {"decision": "approve", "example_ids": ["one"]},
        {"decision": "ok", "example_ids": [1]},
        {"decision": "approve", "filter": {"review": "maybe"}},
        {"decision": "approve", "filter": {"strategy": "invented"}},
        {"decision": "approve", "filter": {"unknown": 1}},
    ],
)
def test_bad_bulk_bodies_are_422(
    client: TestClient,
    auth: dict[str, str],
    reviewed: tuple[str, str, list[int]],
    body: dict[str, Any],
) -> None:
    _, aug, _ = reviewed
    r = client.post(f"/v1/augmentations/{aug}/review", json=body, headers=auth)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["message"]
    assert _page(client, auth, aug)["counts"]["pending"] == 5


def test_review_is_scoped_to_the_workspace_and_the_augmentation(
    client: TestClient, auth: dict[str, str], reviewed: tuple[str, str, list[int]]
) -> None:
    col, aug, ids = reviewed
    other = new_workspace(client, "other")
    approve = {"decision": "approve"}
    assert client.get(f"/v1/augmentations/{aug}/examples", headers=other).status_code == 404
    assert (
        client.get(f"/v1/augmentations/{aug}/examples/{ids[0]}", headers=other).status_code == 404
    )
    r = client.post(
        f"/v1/augmentations/{aug}/examples/{ids[0]}/review", json=approve, headers=other
    )
    assert r.status_code == 404
    r = client.post(
        f"/v1/augmentations/{aug}/review", json={**approve, "example_ids": ids}, headers=other
    )
    assert r.status_code == 404

    # An example of another augmentation of the same workspace is not found through this one.
    doc = client.get(f"/v1/collections/{col}/documents", headers=auth).json()["data"][0]["id"]
    second = _upload(client, auth, col, doc)
    foreign = _ids(client, second)[0]
    assert (
        client.get(f"/v1/augmentations/{aug}/examples/{foreign}", headers=auth).status_code == 404
    )
    r = client.post(
        f"/v1/augmentations/{aug}/examples/{foreign}/review", json=approve, headers=auth
    )
    assert r.status_code == 404
    r = client.post(
        f"/v1/augmentations/{aug}/review", json={**approve, "example_ids": [foreign]}, headers=auth
    )
    assert r.status_code == 404 and str(foreign) in r.json()["error"]["message"]
    assert _page(client, auth, second)["counts"]["approved"] == 0


def test_only_a_succeeded_augmentation_can_be_reviewed(
    client: TestClient, auth: dict[str, str], reviewed: tuple[str, str, list[int]]
) -> None:
    col, aug, ids = reviewed
    # A teacher job that no worker runs stays queued.
    r = client.post(
        f"/v1/collections/{col}/augmentations",
        json={"strategies": ["local"], "teacher": {"name": "offline"}},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    queued = r.json()["id"]
    r = client.post(
        f"/v1/augmentations/{queued}/review",
        json={"decision": "approve", "filter": {}},
        headers=auth,
    )
    assert r.status_code == 409, r.text
    assert "still queued" in r.json()["error"]["message"]

    with client.app.state.runtime.session_factory() as s:  # type: ignore[attr-defined]
        row = s.get(Augmentation, aug)
        assert row is not None
        row.status = "running"
        s.commit()
    r = client.post(
        f"/v1/augmentations/{aug}/examples/{ids[0]}/review",
        json={"decision": "approve"},
        headers=auth,
    )
    assert r.status_code == 409 and "still running" in r.json()["error"]["message"]
    r = client.post(
        f"/v1/augmentations/{aug}/review",
        json={"decision": "approve", "example_ids": ids},
        headers=auth,
    )
    assert r.status_code == 409
    assert _page(client, auth, aug)["counts"]["approved"] == 0  # listing still works


def _train(
    client: TestClient, auth: dict[str, str], col: str, aug: str, name: str, **extra: Any
) -> Any:
    return client.post(
        f"/v1/collections/{col}/adapters",
        json={"name": name, "augmentation_id": aug, **extra},
        headers=auth,
    )


def _stored(client: TestClient, adapter_id: str) -> tuple[Adapter, list[str]]:
    """The adapter row and the augmented texts its training job would read (these statements
    answer no question)."""
    with client.app.state.runtime.session_factory() as s:  # type: ignore[attr-defined]
        adapter = s.get(Adapter, adapter_id)
        assert adapter is not None
        pairs = augmented_texts(s, adapter)
        assert all(question == "" for question, _ in pairs)
        return adapter, [text for _, text in pairs]


def test_adapters_train_on_the_examples_their_review_state_allows(
    client: TestClient, auth: dict[str, str], reviewed: tuple[str, str, list[int]]
) -> None:
    col, aug, ids = reviewed
    # approved: 0 (flagged) and 3 (flagged); rejected: 1; pending: 2 (unscored), 4 (flagged).
    review = f"/v1/augmentations/{aug}/review"
    r = client.post(
        review, json={"decision": "approve", "example_ids": [ids[0], ids[3]]}, headers=auth
    )
    assert r.status_code == 200, r.text
    r = client.post(review, json={"decision": "reject", "example_ids": [ids[1]]}, headers=auth)
    assert r.status_code == 200, r.text

    expected = {
        "not_flagged": ([ids[0], ids[2], ids[3]], 2, 1, 0, 1, 1, 0),
        "not_rejected": ([ids[0], ids[2], ids[3], ids[4]], 2, 2, 0, 1, 0, 0),
        "approved": ([ids[0], ids[3]], 2, 0, 0, 1, 1, 1),
        "all": (ids, 2, 2, 1, 0, 0, 0),
    }
    for choice, (want, approved, pending, rejected, ex_rej, ex_flag, ex_pend) in expected.items():
        r = _train(client, auth, col, aug, f"ad-{choice.replace('_', '-')}", examples=choice)
        assert r.status_code == 201, r.text
        public = client.get(f"/v1/adapters/{r.json()['id']}", headers=auth).json()
        assert public["augmentation_id"] == aug
        assert public["review"] == {
            "examples": choice,
            "trained_examples": len(want),
            "approved": approved,
            "pending": pending,
            "rejected": rejected,
            "excluded_rejected": ex_rej,
            "excluded_flagged": ex_flag,
            "excluded_pending": ex_pend,
            "example_ids_sha256": ids_sha256(want),
        }, choice
        adapter, texts = _stored(client, public["id"])
        assert adapter.example_selection is not None
        assert adapter.example_selection["example_ids"] == want
        by_id = dict(zip(ids, STATEMENTS, strict=True))
        assert texts == [by_id[i] for i in want]

    # The default is not_flagged; a review made after the request changes nothing it trains on.
    r = _train(client, auth, col, aug, "ad-default")
    assert r.status_code == 201, r.text
    assert r.json()["review"]["examples"] == "not_flagged"
    client.post(review, json={"decision": "reject", "filter": {}}, headers=auth)
    _, texts = _stored(client, r.json()["id"])
    assert texts == [STATEMENTS[0], STATEMENTS[2], STATEMENTS[3]]


def test_training_on_approved_needs_an_approved_example(
    client: TestClient, auth: dict[str, str], reviewed: tuple[str, str, list[int]]
) -> None:
    col, aug, _ = reviewed
    r = _train(client, auth, col, aug, "ad", examples="approved")
    assert r.status_code == 422, r.text
    assert "no approved examples" in r.json()["error"]["message"]
    assert _train(client, auth, col, aug, "ad", examples="some").status_code == 422
    r = client.post(
        f"/v1/collections/{col}/adapters", json={"name": "plain", "examples": "all"}, headers=auth
    )
    assert r.status_code == 422 and "augmentation_id" in r.json()["error"]["message"]

    r = client.post(f"/v1/collections/{col}/adapters", json={"name": "plain"}, headers=auth)
    assert r.status_code == 201, r.text
    assert r.json()["review"] is None
    _, texts = _stored(client, r.json()["id"])
    assert texts == []


def test_an_adapter_recorded_before_reviews_trains_on_every_example(
    client: TestClient, auth: dict[str, str], reviewed: tuple[str, str, list[int]]
) -> None:
    col, aug, ids = reviewed
    r = _train(client, auth, col, aug, "old")
    assert r.status_code == 201, r.text
    with client.app.state.runtime.session_factory() as s:  # type: ignore[attr-defined]
        adapter = s.get(Adapter, r.json()["id"])
        assert adapter is not None
        adapter.example_selection = None  # as the migration leaves an older adapter
        s.commit()
    assert client.get(f"/v1/adapters/{r.json()['id']}", headers=auth).json()["review"] is None
    _, texts = _stored(client, r.json()["id"])
    assert texts == STATEMENTS
