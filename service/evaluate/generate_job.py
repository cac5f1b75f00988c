"""The eval-set generation job: read the collection's sentences, write the items
(`service.evaluate.generate`), store them with their record and held-out sentences.

The generator is deterministic for its documents and seed, so a job whose worker died simply
runs again from the start; the items are stored in one transaction at the end, so a set is
never half written. Documents that changed since the request fail the job."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from service.core.errors import Unprocessable
from service.db.tables import Document, EvalSet
from service.evaluate.evalsets import KIND, collection_sentences
from service.evaluate.generate import generate_evalset
from service.jobs.context import JobContext


class EvalSetGenerationExecutor:
    kind = KIND

    def run(self, ctx: JobContext) -> dict[str, Any]:
        p = ctx.params
        versions: dict[str, str] = p["document_versions"]
        with ctx.session_factory() as session:
            evalset = session.get(EvalSet, ctx.subject_id)
            if evalset is None:
                raise Unprocessable(f"eval set {ctx.subject_id} no longer exists")
            docs = {
                d.id: d for d in session.scalars(select(Document).where(Document.id.in_(versions)))
            }
            changed = [
                d for d, sha in versions.items() if d not in docs or docs[d].text_sha256 != sha
            ]
            if changed:
                raise Unprocessable(
                    f"documents changed or were deleted since the eval set was requested: "
                    f"{changed}; request it again"
                )
            sentences = collection_sentences(session, list(versions))

        def progress(done: int, total: int, message: str) -> None:
            ctx.progress(done, total, message=message)

        generation = generate_evalset(
            sentences,
            categories=p["categories"],
            max_items=p["max_items"],
            hold_out=p["hold_out"],
            seed=p["seed"],
            choices=p["choices"],
            progress=progress,
        )
        if not generation.items:
            raise Unprocessable(
                f"the documents gave no item the generator could trust ({len(sentences)} "
                "sentences read: it asks only where the parse is sure and a wrong answer of the "
                "same kind exists); upload an eval set instead (JSONL)"
            )
        held = [
            {
                "key": s.key,
                "document_id": s.document_id,
                "sha256": s.sha256,
                "text": s.text,
            }
            for s in generation.held_out
        ]
        with ctx.session_factory() as session:
            evalset = session.get(EvalSet, ctx.subject_id)
            assert evalset is not None
            evalset.items = [
                g.item.model_dump(mode="json", exclude_none=True) for g in generation.items
            ]
            evalset.item_count = len(generation.items)
            evalset.generation = {
                "params": {
                    k: p[k] for k in ("categories", "max_items", "hold_out", "seed", "choices")
                },
                "stats": generation.stats,
                "items": [g.record() for g in generation.items],
            }
            evalset.holdout = (
                {
                    "share": p["hold_out"],
                    "seed": p["seed"],
                    "held_out_items": generation.stats.get("held_out_items", 0),
                    "sentences": held,
                }
                if held
                else None
            )
            evalset.status = "ready"
            session.commit()
        return {
            "evalset_id": ctx.subject_id,
            "items": len(generation.items),
            "categories": generation.stats["items"],
            "held_out_sentences": len(held),
        }

    def on_end(self, ctx: JobContext, status: str, error: str | None) -> None:
        if status == "succeeded":
            return
        with ctx.session_factory() as session:
            evalset = session.get(EvalSet, ctx.subject_id)
            if evalset is None or evalset.status == "ready":
                return
            evalset.status = "cancelled" if status == "cancelled" else "failed"
            evalset.generation = {
                **(evalset.generation or {}),
                "error": error or f"generation job {status}",
            }
            session.commit()
