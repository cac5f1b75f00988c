"""The training job: documents (+ an augmentation set) -> adapters.train recipe -> registry ->
loaded into vLLM behind the canary. Checkpoints live in the job's work folder, so a worker that
was killed resumes from the last one."""

from __future__ import annotations

import asyncio
import shutil
import time
from typing import Any

from sqlalchemy import select

from adapters.knowledge import KnowledgeProbe
from adapters.train import TrainConfig, TrainingCancelled, TrainProgress, train
from adapters.training_data import DocumentSentences, build_examples, chat_prompt
from service.core.errors import Unprocessable
from service.core.storage import vllm_adapter_root
from service.db.tables import Adapter, AugmentedExample, Document
from service.evaluate.probes import knowledge_probes, question_probes
from service.jobs.context import JobCancelled, JobContext, WorkerStopping
from service.training import registry

KIND = "training"


def _trained_examples(session, adapter: Adapter) -> list[tuple[str, dict[str, Any]]]:  # type: ignore[no-untyped-def]
    """(text, detail) of exactly the augmented examples the adapter was requested with, in id
    order. The ids were resolved from the review states when the adapter was requested; an
    adapter recorded before that (no selection) trains on every example of its augmentation."""
    if not adapter.augmentation_id:
        return []
    rows = [
        (example_id, text, (provenance or {}).get("detail") or {})
        for example_id, provenance, text in session.execute(
            select(AugmentedExample.id, AugmentedExample.provenance, AugmentedExample.text)
            .where(AugmentedExample.augmentation_id == adapter.augmentation_id)
            .order_by(AugmentedExample.id)
        ).all()
    ]
    selection = adapter.example_selection
    if selection is None:
        return [(text, detail) for _, text, detail in rows]
    wanted = set(selection.get("example_ids") or [])
    chosen = [(text, detail) for example_id, text, detail in rows if example_id in wanted]
    if len(chosen) != len(wanted):
        found = {example_id for example_id, _, _ in rows}
        missing = sorted(wanted - found)
        raise Unprocessable(
            f"examples of augmentation {adapter.augmentation_id} the adapter was requested "
            f"with no longer exist: {missing[:20]}"
        )
    return chosen


def augmented_texts(session, adapter: Adapter) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(question, text) of the augmented examples the adapter trains on; the question is ""
    for a statement (only the qa strategy's examples answer one)."""
    return [
        (detail.get("question") or "", text) for text, detail in _trained_examples(session, adapter)
    ]


def trained_questions(session, adapter: Adapter) -> list[tuple[str, list[str], int]]:  # type: ignore[no-untyped-def]
    """(question, choices, answer index) of the qa examples the adapter trains on: what its
    knowledge check asks in chat form."""
    return [
        (detail["question"], list(detail["choices"]), int(detail["answer_index"]))
        for _, detail in _trained_examples(session, adapter)
        if detail.get("question")
        and detail.get("choices")
        and detail.get("answer_index") is not None
    ]


def all_probes(session, adapter: Adapter, tokenizer: Any) -> list[Any]:  # type: ignore[no-untyped-def]
    """The knowledge check's probes: its documents' sentences with a key span left out, and
    the questions it was trained to answer asked as chat requests."""
    return knowledge_probes(document_sentences(session, adapter)) + question_probes(
        tokenizer, trained_questions(session, adapter)
    )


def load_training_set(session, adapter: Adapter, tokenizer: Any):  # type: ignore[no-untyped-def]
    """The adapter's training set from the documents it recorded and its augmentation set."""
    versions: dict[str, str] = adapter.document_versions
    docs = {d.id: d for d in session.scalars(select(Document).where(Document.id.in_(versions)))}
    changed = [d for d, sha in versions.items() if d not in docs or docs[d].text_sha256 != sha]
    if changed:
        raise Unprocessable(
            f"documents changed or were deleted since the adapter was requested: {changed}"
        )
    documents = [
        DocumentSentences(document_id=doc_id, sentences=trained_sentences(session, adapter, doc_id))
        for doc_id in versions
    ]
    # A question is trained as the chat turn it will be asked in (the qa strategy).
    augmented = [
        (chat_prompt(tokenizer, question), text) if question else text
        for question, text in augmented_texts(session, adapter)
    ]
    params = adapter.hyperparameters
    return build_examples(
        documents,
        augmented,
        mode=params.get("mode", "independent"),
        seed=params.get("train", {}).get("seed", 0),
        tokenizer=tokenizer,
    )


def trained_sentences(session, adapter: Adapter, document_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    """A document's sentences in reading order, less those an eval set holds out of the
    adapter's training (`holdout_evalset_id`)."""
    from service.evaluate.evalsets import collection_sentences, held_out_sentence

    held_out = held_out_sentence(adapter)
    return [s.text for s in collection_sentences(session, [document_id]) if not held_out(s)]


def document_sentences(session, adapter: Adapter) -> list[str]:  # type: ignore[no-untyped-def]
    """Every sentence the adapter trains on from its documents: what its knowledge check
    probes (held-out sentences are the eval set's to test, not the check's)."""
    return [
        s
        for doc_id in adapter.document_versions or {}
        for s in trained_sentences(session, adapter, doc_id)
    ]


class TrainingExecutor:
    kind = KIND

    def run(self, ctx: JobContext) -> dict[str, Any]:
        from adapters.base_model import load_tokenizer

        with ctx.session_factory() as session:
            adapter = session.get(Adapter, ctx.subject_id)
            assert adapter is not None
            registry.set_status(adapter, "training")
            tokenizer = load_tokenizer(ctx.model_dir)
            training_set = load_training_set(session, adapter, tokenizer)
            probes = [
                KnowledgeProbe.from_text(tokenizer, p.question, p.choices or [], p.answer_index)
                for p in all_probes(session, adapter, tokenizer)
            ]
            adapter.dataset_hash = training_set.sha256
            config = TrainConfig.from_dict(adapter.hyperparameters.get("train", {}))
            session.commit()

        started = time.monotonic()

        def report(p: TrainProgress) -> None:
            ctx.progress(
                p.step,
                p.total_steps,
                message=f"training (epoch {p.epoch})"
                + ("; compiling the training step" if p.compiling else ""),
                loss=round(p.loss, 4),
                learning_rate=p.learning_rate,
                tokens_per_second=round(p.tokens_per_second, 1),
                held_out_loss=p.held_out_loss,
                knowledge=p.knowledge,
            )

        try:
            result = train(
                config,
                ctx.model_dir,
                training_set,
                ctx.work_dir / "run",
                progress=report,
                should_stop=ctx.is_cancelled,
                probes=probes,
            )
        except TrainingCancelled as exc:
            if ctx.stopping is not None and ctx.stopping.is_set():
                raise WorkerStopping() from exc
            raise JobCancelled() from exc

        with ctx.session_factory() as session:
            adapter = session.get(Adapter, ctx.subject_id)
            assert adapter is not None
            run = ctx.work_dir / "run"
            registry.store_artifact(
                ctx.storage,
                adapter,
                result.adapter_dir,
                [run / name for name in ("train_config.json", "metrics.json", "loss_curve.png")],
            )
            adapter.metrics = {
                **result.metrics,
                "job_wall_s": round(time.monotonic() - started, 2),
                "training_examples": len(training_set.examples),
                "validation_examples": len(training_set.validation),
                "example_counts": training_set.counts,
            }
            registry.set_status(adapter, "loading")
            session.commit()
        steps = int(result.metrics.get("steps") or 0)
        ctx.progress(steps, steps or None, message="loading into vLLM")
        status = asyncio.run(self._activate(ctx))
        if status.status != "ready":
            raise Unprocessable(f"the trained adapter failed its check: {status.status_reason}")
        ctx.progress(steps, steps or None, message="knowledge check")
        knowledge = asyncio.run(self._knowledge_check(ctx))
        with ctx.session_factory() as session:
            adapter = session.get(Adapter, ctx.subject_id)
            assert adapter is not None
            adapter.metrics = {**(adapter.metrics or {}), "knowledge": knowledge}
            session.commit()
            metrics = adapter.metrics
        return {"adapter_id": ctx.subject_id, "metrics": metrics}

    async def _knowledge_check(self, ctx: JobContext) -> dict[str, Any]:
        """Probes from the adapter's own documents, scored for the adapter and the base model
        (`service.evaluate.probes`): whether training took."""
        from adapters.base_model import load_tokenizer
        from adapters.vllm.config import kv_block_size
        from adapters.vllm.routing import connect
        from service.evaluate.probes import BaseScores, knowledge_check
        from service.evaluate.scoring import Scorer

        with ctx.session_factory() as session:
            adapter = session.get(Adapter, ctx.subject_id)
            assert adapter is not None
            served = adapter.served_name
            tokenizer = load_tokenizer(ctx.model_dir)
            probes = all_probes(session, adapter, tokenizer)
            training = dict(adapter.metrics or {})
            # The fingerprint of the base model it was trained on, recorded when it was requested.
            base_scores = BaseScores(
                ctx.settings.data_dir / "cache" / "knowledge-base", adapter.base_model_hash
            )
        key = ctx.settings.vllm_api_key
        client = connect(str(ctx.vllm_url), api_key=key.get_secret_value() if key else None)
        scorer = Scorer(client, tokenizer, kv_block_tokens=kv_block_size(ctx.settings))
        try:
            return await knowledge_check(scorer, served, probes, training, base_scores)
        finally:
            await client.aclose()

    async def _activate(self, ctx: JobContext) -> Adapter:
        from adapters.vllm.loader import AdapterLoader
        from adapters.vllm.routing import connect

        if not ctx.vllm_url:
            raise Unprocessable("no vLLM is configured for this worker; the adapter cannot load")
        key = ctx.settings.vllm_api_key
        client = connect(ctx.vllm_url, api_key=key.get_secret_value() if key else None)
        try:
            loader = AdapterLoader(
                client,
                max_lora_rank=ctx.settings.vllm_max_lora_rank,
                lock_dir=ctx.settings.data_dir / "locks",
                remote_root=vllm_adapter_root(ctx.settings),
            )
            return await registry.activate(
                ctx.session_factory, ctx.storage, loader, ctx.subject_id or ""
            )
        finally:
            await client.aclose()

    def on_end(self, ctx: JobContext, status: str, error: str | None) -> None:
        with ctx.session_factory() as session:
            adapter = session.get(Adapter, ctx.subject_id)
            if adapter is None or adapter.status in ("ready", "deleted"):
                return
            if status == "succeeded":
                return
            registry.set_status(adapter, "failed", error or f"training job {status}")
            session.commit()
        if status in ("succeeded", "cancelled", "failed"):
            shutil.rmtree(ctx.work_dir / "run" / "checkpoints", ignore_errors=True)
