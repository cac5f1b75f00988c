"""The augmentation job: run the requested strategies over a collection's units and record every
unit's examples as it finishes, so results appear while the job runs and a resumed job skips
finished units (the unique (augmentation, strategy, unit) row makes a repeat impossible)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any

from sqlalchemy import case, delete, func, select
from sqlalchemy.exc import IntegrityError

from service.augment.engine import run_strategy
from service.augment.eta import UnitClock
from service.augment.params import AugmentParams
from service.augment.prompts import TEMPLATE_VARIABLES, resolve_template
from service.augment.redact import PiiRedactor, redaction_policy
from service.augment.teacher import Teacher
from service.augment.teachers import teacher_config
from service.augment.types import Unit, UnitResult, YieldStats
from service.collections.records import document_passages
from service.core.errors import ServiceUnavailable
from service.core.security import resolve_secret_key
from service.db.tables import (
    Augmentation,
    AugmentationUnit,
    AugmentedExample,
    Document,
    utcnow,
)
from service.jobs.context import JobContext

KIND = "augmentation"
log = logging.getLogger("docadapt.augment")


def collection_units(session, augmentation: Augmentation, strategy: str, granularity: str):  # type: ignore[no-untyped-def]
    """The units of the augmentation's documents: sentences or passages, or whole documents."""
    docs = list(
        session.scalars(
            select(Document)
            .where(Document.id.in_(augmentation.document_ids))
            .order_by(Document.created_at, Document.id)
        )
    )
    units: list[Unit] = []
    for doc in docs:
        passages = document_passages(session, doc.id)
        if strategy == "global":
            text = "\n\n".join(p.text for p in passages)
            units.append(Unit(id=doc.id, document_id=doc.id, text=text, title=doc.filename))
            continue
        for p in passages:
            if granularity == "passage":
                units.append(Unit(id=f"{doc.id}:p{p.index}", document_id=doc.id, text=p.text))
            else:
                for k, sentence in enumerate(p.sentences):
                    units.append(
                        Unit(
                            id=f"{doc.id}:p{p.index}:s{k}",
                            document_id=doc.id,
                            text=sentence,
                            title=doc.filename,
                            context=p.sentences[k - 1] if k else "",
                        )
                    )
    return units


def build_params(params: dict[str, Any], count_tokens: Any) -> AugmentParams:
    base = AugmentParams(
        outputs_per_unit=params.get("outputs_per_unit", 3),
        temperature=params.get("temperature", 0.7),
        top_p=params.get("top_p", 1.0),
        max_tokens=params.get("max_tokens", 128),
        global_max_tokens=params.get("global_max_tokens", 256),
        gate=params.get("gate", True),
        templates=params.get("templates") or {},
        use_rules=params.get("use_rules", True),
        context_budget_tokens=params.get("context_budget_tokens", 6000),
    )
    return replace(base, count_tokens=count_tokens) if count_tokens else base


class AugmentationExecutor:
    kind = KIND

    def run(self, ctx: JobContext) -> dict[str, Any]:
        return asyncio.run(self._run(ctx))

    async def _run(self, ctx: JobContext) -> dict[str, Any]:
        from adapters.base_model import load_tokenizer
        from adapters.tokens import TokenCounter

        count_tokens = TokenCounter(load_tokenizer(ctx.model_dir)).text
        p = ctx.params
        params = build_params(p, count_tokens)
        teacher_cfg = teacher_config(
            ctx.settings, p.get("teacher"), _own_teacher_url(ctx), resolve_secret_key(ctx.settings)
        )
        redactor = self._redactor(ctx, params, teacher_cfg.base_url)
        plan = self._plan(ctx)
        total = sum(len(u) for _, u, _ in plan)
        finished = sum(len(d) for _, _, d in plan)
        # Global units cost far more than sentence units: time each strategy on its own.
        clock = UnitClock({s: (len(u), len(d & {x.id for x in u})) for s, u, d in plan})
        eta, note = clock.estimate()
        ctx.progress(finished, total, message="augmenting", eta_s=eta, eta_note=note)
        started = time.monotonic()

        async with Teacher(teacher_cfg, redactor=redactor) as teacher:
            for strategy, units, done in plan:
                counter = {"n": finished}
                clock.start(strategy)

                def record(
                    result: UnitResult, strategy: str = strategy, counter: dict = counter
                ) -> None:
                    self._record(ctx, strategy, result, redactor)
                    if result.teacher_failing:
                        raise self._teacher_failed(ctx, result, total)
                    counter["n"] += 1
                    clock.unit_done(strategy)
                    eta, note = clock.estimate()
                    ctx.progress(
                        counter["n"],
                        total,
                        message=f"augmenting ({strategy})",
                        eta_s=eta,
                        eta_note=note,
                    )

                await run_strategy(
                    strategy,
                    units,
                    teacher,
                    replace(params, keep_examples=False),
                    on_unit_done=record,
                    skip_unit_ids=done,
                )
                finished = counter["n"]
        stats = self._stats(ctx, time.monotonic() - started)
        if redactor is not None:
            self._finish_redaction(ctx, redactor)
        return {"augmentation_id": ctx.subject_id, "examples": stats["examples"]}

    def _plan(self, ctx: JobContext) -> list[tuple[str, list[Unit], set[str]]]:
        """Each requested strategy with its units and the keys of the units already recorded
        (failed ones cleared, so a resumed run tries them again); the augmentation is marked
        running and its planned unit counts saved."""
        p = ctx.params
        with ctx.session_factory() as session:
            aug = session.get(Augmentation, ctx.subject_id)
            assert aug is not None
            aug.status = "running"
            session.commit()
            plan = []
            for strategy in p["strategies"]:
                units = collection_units(session, aug, strategy, p.get("unit", "sentence"))
                # Failed units are tried again on a resumed run; finished ones are skipped.
                session.execute(
                    delete(AugmentationUnit).where(
                        AugmentationUnit.augmentation_id == aug.id,
                        AugmentationUnit.strategy == strategy,
                        AugmentationUnit.status == "failed",
                    )
                )
                done = set(
                    session.scalars(
                        select(AugmentationUnit.unit_key).where(
                            AugmentationUnit.augmentation_id == aug.id,
                            AugmentationUnit.strategy == strategy,
                        )
                    )
                )
                plan.append((strategy, units, done))
            session.commit()
        with ctx.session_factory() as session:
            aug = session.get(Augmentation, ctx.subject_id)
            assert aug is not None
            aug.stats = {**(aug.stats or {}), "planned": {s: len(u) for s, u, _ in plan}}
            session.commit()
        return plan

    def _finish_redaction(self, ctx: JobContext, redactor: PiiRedactor) -> None:
        """Save the redaction report and log how many prompts had personal data taken out."""
        self._save_redaction(ctx, redactor)
        report = redactor.report()  # counts only: the values never go to a log
        log.info(
            "augmentation %s: %d of %d teacher prompts had personal data taken out (%s)",
            ctx.subject_id,
            report["prompts_redacted"],
            report["prompts"],
            ", ".join(f"{n} {kind}" for kind, n in report["counts"].items()) or "none",
        )

    def _redactor(
        self, ctx: JobContext, params: AugmentParams, teacher_url: str
    ) -> PiiRedactor | None:
        """The job's PII redactor (None when it does not redact), with the decision recorded in
        the augmentation's stats; a resumed job keeps the placeholders it gave out before."""
        enabled, decision = redaction_policy(
            ctx.settings.redact_pii,
            ctx.params.get("redact_pii"),
            teacher_url,
            _own_teacher_url(ctx),
        )
        with ctx.session_factory() as session:
            aug = session.get(Augmentation, ctx.subject_id)
            assert aug is not None
            redactor = None
            if enabled:
                templates = [
                    resolve_template(kind, params.templates.get(kind)).source
                    for kind in TEMPLATE_VARIABLES
                ]
                previous = (aug.stats or {}).get("redaction") or {}
                redactor = PiiRedactor(templates, previous=previous)
                decision |= redactor.report()
                redactor.mark_saved()
            aug.stats = {**(aug.stats or {}), "redaction": decision}
            session.commit()
        return redactor

    def _save_redaction(
        self, ctx: JobContext, redactor: PiiRedactor, session: Any | None = None
    ) -> None:
        """Write the redactor's report into the augmentation's stats (in `session` when given,
        which the caller commits)."""
        if not redactor.changed:
            return
        if session is None:
            with ctx.session_factory() as own:
                self._save_redaction(ctx, redactor, own)
                own.commit()
            redactor.mark_saved()
            return
        aug = session.get(Augmentation, ctx.subject_id)
        assert aug is not None
        stats = aug.stats or {}
        aug.stats = {**stats, "redaction": {**stats.get("redaction", {}), **redactor.report()}}

    def _record(
        self,
        ctx: JobContext,
        strategy: str,
        result: UnitResult,
        redactor: PiiRedactor | None = None,
    ) -> None:
        """Store one unit's examples and its done-marker in one transaction (with the
        redaction report as it stands, when the job redacts)."""
        with ctx.session_factory() as session:
            session.add(
                AugmentationUnit(
                    augmentation_id=ctx.subject_id,
                    strategy=strategy,
                    unit_key=result.unit_id,
                    status="failed" if result.failed else "done",
                    stats=result.stats.to_dict(),
                    error=result.error,
                )
            )
            for ex in result.examples:
                session.add(
                    AugmentedExample(
                        augmentation_id=ctx.subject_id,
                        strategy=strategy,
                        unit_key=result.unit_id,
                        document_id=ex.document_id,
                        text=ex.text,
                        provenance={k: v for k, v in ex.to_dict().items() if k != "text"},
                        score=ex.score,
                        flagged=ex.flagged,
                    )
                )
            if redactor is not None:
                self._save_redaction(ctx, redactor, session)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()  # recorded by an earlier attempt; never twice
                return
            if redactor is not None:
                redactor.mark_saved()

    def _teacher_failed(
        self, ctx: JobContext, result: UnitResult, total: int
    ) -> ServiceUnavailable:
        """The job's end when its teacher endpoint fails for good (retries spent, or it refuses
        every request): sending the remaining units would only fail each of them slowly and end
        "succeeded" with holes. What finished before stays recorded."""
        with ctx.session_factory() as session:
            done = session.scalar(
                select(func.count(AugmentationUnit.id)).where(
                    AugmentationUnit.augmentation_id == ctx.subject_id,
                    AugmentationUnit.status == "done",
                )
            )
            kept = session.scalar(
                select(func.count(AugmentedExample.id)).where(
                    AugmentedExample.augmentation_id == ctx.subject_id
                )
            )
        reason = (result.error or "").removeprefix("teacher: ")
        return ServiceUnavailable(
            f"the teacher failed: {reason}. The augmentation stopped there: {done} of {total} "
            f"units had finished, and their {kept} statements are kept with this augmentation; "
            "submit it again once the teacher answers",
            code="teacher_failed",
        )

    def _stats(self, ctx: JobContext, wall_s: float) -> dict[str, Any]:
        with ctx.session_factory() as session:
            aug = session.get(Augmentation, ctx.subject_id)
            assert aug is not None
            aug.stats = augmentation_stats(session, aug.id, extra_wall_s=wall_s, previous=aug.stats)
            session.commit()
            return aug.stats

    def on_end(self, ctx: JobContext, status: str, error: str | None) -> None:
        with ctx.session_factory() as session:
            aug = session.get(Augmentation, ctx.subject_id)
            if aug is None:
                return
            aug.status = status
            aug.finished_at = utcnow()
            aug.stats = augmentation_stats(session, aug.id, previous=aug.stats)
            if error:
                aug.stats = {**aug.stats, "error": error}
            session.commit()


def augmentation_stats(
    session,
    augmentation_id: str,
    *,
    extra_wall_s: float = 0.0,
    previous: dict | None = None,  # type: ignore[no-untyped-def]
) -> dict[str, Any]:
    """Totals per strategy from the recorded units: yield per stage, tokens, failures."""
    per: dict[str, YieldStats] = {}
    for strategy, stats in session.execute(
        select(AugmentationUnit.strategy, AugmentationUnit.stats).where(
            AugmentationUnit.augmentation_id == augmentation_id
        )
    ):
        per.setdefault(strategy, YieldStats()).merge(YieldStats.from_dict(stats))
    examples = session.scalar(
        select(func.count(AugmentedExample.id)).where(
            AugmentedExample.augmentation_id == augmentation_id
        )
    )
    # Verification: per strategy, the mean score of what was kept (estimated precision) and
    # how many statements wait for a person's approval.
    verified = {
        strategy: (avg, int(flagged or 0))
        for strategy, avg, flagged in session.execute(
            select(
                AugmentedExample.strategy,
                func.avg(AugmentedExample.score),
                func.sum(case((AugmentedExample.flagged, 1), else_=0)),
            )
            .where(AugmentedExample.augmentation_id == augmentation_id)
            .group_by(AugmentedExample.strategy)
        )
    }
    planned: dict[str, int] = (previous or {}).get("planned", {})
    for strategy, n in planned.items():
        per.setdefault(strategy, YieldStats()).units_total = n
    wall = float((previous or {}).get("wall_s", 0.0)) + extra_wall_s
    overall = session.scalar(
        select(func.avg(AugmentedExample.score)).where(
            AugmentedExample.augmentation_id == augmentation_id
        )
    )
    carried = {"redaction": previous["redaction"]} if previous and "redaction" in previous else {}
    return {
        **carried,
        "planned": planned,
        "examples": int(examples or 0),
        "wall_s": round(wall, 3),
        "strategies": {
            name: {
                **s.to_dict(),
                "estimated_precision": _rounded(verified.get(name, (None, 0))[0]),
                "flagged": verified.get(name, (None, 0))[1],
            }
            for name, s in sorted(per.items())
        },
        "estimated_precision": _rounded(overall),
        "prompt_tokens": sum(s.prompt_tokens for s in per.values()),
        "completion_tokens": sum(s.completion_tokens for s in per.values()),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def _own_teacher_url(ctx: JobContext) -> str | None:
    """This service's own teacher: the teacher-only vLLM `docadapt serve` started
    (DOCADAPT_TEACHER_VLLM_DTYPE), else the vLLM that serves queries."""
    return ctx.settings.teacher_vllm_url or ctx.vllm_url
