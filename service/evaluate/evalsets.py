"""Generated eval sets and their held-out sentences, shared by the REST API, the worker and the
training job (no FastAPI here).

A generation request stores the eval set at once (status "generating") with a job of kind
`evalset_generation`; the job (`service/evaluate/generate_job.py`) writes its items, its record
(request, counts, each item's sources) and the sentences it holds out. An adapter requested with
`holdout_evalset_id` records those sentences (key and hash) and the augmented examples made from
them, resolved when it is requested, and trains without either.

Every function that takes a workspace id never returns another workspace's rows (404)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from service.collections.records import document_passages, get_collection, list_documents
from service.core.errors import Conflict, Unprocessable
from service.db.tables import Adapter, AugmentedExample, Document, EvalSet, Job
from service.evaluate.evalset_schemas import EvalSetGenerate
from service.evaluate.generate import SourceSentence
from service.jobs import records

KIND = "evalset_generation"


def sentence_key(document_id: str, passage_index: int, sentence_index: int) -> str:
    """A sentence's key, the augmentation's unit id of that sentence."""
    return f"{document_id}:p{passage_index}:s{sentence_index}"


def collection_sentences(session: Session, document_ids: list[str]) -> list[SourceSentence]:
    """The documents' sentences in order, keyed as the augmentation keys its units."""
    out: list[SourceSentence] = []
    for doc_id in document_ids:
        for p in document_passages(session, doc_id):
            for k, text in enumerate(p.sentences):
                out.append(
                    SourceSentence(
                        key=sentence_key(doc_id, p.index, k),
                        document_id=doc_id,
                        text=text,
                        previous=p.sentences[k - 1] if k else "",
                    )
                )
    return out


# -- generating -------------------------------------------------------------------------------


def request_generation(
    session: Session,
    workspace_id: str,
    collection_id: str,
    body: EvalSetGenerate,
    max_active_jobs: int | None = None,
) -> EvalSet:
    """Store a generated eval set as "generating" and queue the job that writes it.

    404: the collection is not in this workspace. 422: it has no documents. 429: the workspace
    already has `max_active_jobs` queued or running jobs."""
    collection = get_collection(session, workspace_id, collection_id)
    docs = list_documents(session, workspace_id, collection.id)
    if not docs:
        raise Unprocessable(
            f"collection {collection.id} has no documents to write an eval set from; upload "
            f"documents first (POST /v1/collections/{collection.id}/documents)"
        )
    name = (body.name or "").strip() or f"generated eval set of {collection.name}"
    params = body.generate.model_dump()
    evalset = EvalSet(
        workspace_id=workspace_id,
        collection_id=collection.id,
        name=name,
        items=[],
        item_count=0,
        source="generated",
        status="generating",
        generation={"params": params},
    )
    session.add(evalset)
    session.flush()
    job = records.create_job(
        session,
        workspace_id,
        KIND,
        {
            **params,
            "evalset_id": evalset.id,
            "document_versions": {d.id: d.text_sha256 for d in docs},
        },
        subject_id=evalset.id,
        max_active=max_active_jobs,
    )
    evalset.job_id = job.id
    session.flush()
    return evalset


def evalset_status(evalset: EvalSet) -> str:
    """ready | generating | failed | cancelled. A set whose job was cancelled before a worker
    took it (the job ends without running) reads as cancelled."""
    status = evalset.status or "ready"
    session = object_session(evalset)
    if status == "generating" and evalset.job_id and session is not None:
        job = session.get(Job, evalset.job_id)
        if job is not None and job.status in ("cancelled", "failed"):
            return job.status
    return status


def generated_fields(evalset: EvalSet, *, with_items: bool = False) -> dict[str, Any]:
    """What a generated set adds to `evaluations.evalset_public`: its source, status and job;
    its request and counts; the held-out sentences (their list and each item's sources with
    `with_items`)."""
    out: dict[str, Any] = {
        "source": evalset.source or "uploaded",
        "status": evalset_status(evalset),
        "job_id": evalset.job_id,
    }
    generation = evalset.generation or {}
    if evalset.source == "generated":
        out["generation"] = {k: v for k, v in generation.items() if k != "items"}
        if with_items:
            out["provenance"] = generation.get("items", [])
    holdout = evalset.holdout
    if holdout:
        sentences = holdout.get("sentences", [])
        out["holdout"] = {
            "share": holdout.get("share"),
            "seed": holdout.get("seed"),
            "sentence_count": len(sentences),
            "held_out_items": holdout.get("held_out_items"),
        }
        if with_items:
            out["holdout"]["sentences"] = sentences
    else:
        out["holdout"] = None
    return out


def evalset_jsonl(evalset: EvalSet) -> bytes:
    """The items as the upload accepts them, one JSON object a line; 409 until it is ready."""
    require_ready(evalset)
    lines = [json.dumps(item, ensure_ascii=False) for item in evalset.items or []]
    return ("\n".join(lines) + "\n").encode("utf-8")


def require_ready(evalset: EvalSet) -> None:
    """409 unless the set has its items (a generated one: once its job has succeeded)."""
    status = evalset_status(evalset)
    if status == "ready":
        return
    if status == "generating":
        raise Conflict(
            f"eval set {evalset.id} is still being generated (job {evalset.job_id}); it can be "
            "used once its job has succeeded",
            code="not_ready",
        )
    error = (evalset.generation or {}).get("error")
    raise Conflict(
        f"eval set {evalset.id} is {status}{f': {error}' if error else ''}; it has no items",
        code="not_ready",
    )


# -- holding out ------------------------------------------------------------------------------


def resolve_holdout(
    session: Session, workspace_id: str, collection_id: str, evalset_id: str
) -> dict[str, Any]:
    """The held-out sentences of an eval set, for an adapter of `collection_id` to record.

    404: the eval set is not in this workspace. 409: it is not ready. 422: it belongs to another
    collection or holds nothing out."""
    from service.evaluate.records import get_evalset

    evalset = get_evalset(session, workspace_id, evalset_id)
    if evalset.collection_id != collection_id:
        raise Unprocessable(
            f"eval set {evalset.id} belongs to collection {evalset.collection_id}, not "
            f"{collection_id}"
        )
    require_ready(evalset)
    sentences = (evalset.holdout or {}).get("sentences") or []
    if not sentences:
        raise Unprocessable(
            f"eval set {evalset.id} holds no sentences out of training: generate one with "
            f'"hold_out" above 0 (POST /v1/collections/{collection_id}/evalsets)',
            code="no_holdout",
        )
    return {
        "evalset_id": evalset.id,
        "sentences": len(sentences),
        "sentence_keys": [{"key": s["key"], "sha256": s["sha256"]} for s in sentences],
    }


def held_out_sentence(adapter: Adapter):  # type: ignore[no-untyped-def]
    """A test `(sentence) -> bool` for the sentences the adapter was requested to train
    without: by key, or by its document and text hash (the same sentence wherever it lies)."""
    holdout = (adapter.hyperparameters or {}).get("holdout") or {}
    entries = holdout.get("sentence_keys") or []
    keys = {e["key"] for e in entries}
    hashes = {(e["key"].split(":", 1)[0], e["sha256"]) for e in entries}

    def test(sentence: SourceSentence) -> bool:
        return sentence.key in keys or (sentence.document_id, sentence.sha256) in hashes

    return test


def made_from_held_out(
    row: AugmentedExample, held: set[str], held_texts: set[str], held_documents: set[str]
) -> bool:
    """Whether an augmented example rests on a held-out sentence: its unit or a premise is one,
    its unit is the passage or document holding one, a document a global example had in its
    prompt holds one, or it restates one word for word (an uploaded example, which carries no
    units)."""
    provenance = row.provenance or {}
    units = {row.unit_key, *(provenance.get("unit_ids") or [])}
    for unit in units:
        if unit in held or unit in held_documents:
            return True
        if any(key.startswith(f"{unit}:s") for key in held):
            return True  # a passage unit ("doc:p3") holding a held-out sentence
    context = set(provenance.get("context_document_ids") or [])
    if row.strategy == "global" and held_documents & context:
        return True  # the whole document was in the teacher's prompt
    return " ".join(row.text.split()).lower() in held_texts


def apply_holdout(
    session: Session, selection: dict[str, Any] | None, holdout: dict[str, Any]
) -> dict[str, Any] | None:
    """The example selection without the examples made from held-out sentences (counted as
    `excluded_held_out`); None stays None (plain fine-tuning)."""
    if selection is None:
        return None
    from service.augment.examples import ids_sha256

    held = {s["key"] for s in holdout["sentence_keys"]}
    held_documents = {key.split(":", 1)[0] for key in held}
    held_texts = _held_texts(session, held)
    ids = set(selection.get("example_ids") or [])
    rows = session.scalars(select(AugmentedExample).where(AugmentedExample.id.in_(ids))).all()
    excluded = {r.id for r in rows if made_from_held_out(r, held, held_texts, held_documents)}
    kept = sorted(ids - excluded)
    return {
        **selection,
        "trained_examples": len(kept),
        "excluded_held_out": len(excluded),
        "example_ids_sha256": ids_sha256(kept),
        "example_ids": kept,
    }


def _held_texts(session: Session, held: set[str]) -> set[str]:
    texts = set()
    for doc_id in {key.split(":", 1)[0] for key in held}:
        if session.get(Document, doc_id) is None:
            continue
        for s in collection_sentences(session, [doc_id]):
            if s.key in held:
                texts.add(" ".join(s.text.split()).lower())
    return texts
