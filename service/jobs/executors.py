"""The kinds of job a worker can run. Each executor is resumable: it records finished work as it
goes, and a new attempt skips what is recorded."""

from __future__ import annotations

from typing import Any, Protocol

from service.jobs.context import JobContext


class Executor(Protocol):
    kind: str

    def run(self, ctx: JobContext) -> dict[str, Any]:
        """Do the work; report progress through ctx; return the job's result."""
        ...

    def on_end(self, ctx: JobContext, status: str, error: str | None) -> None:
        """Bring the job's subject (augmentation, adapter, evaluation) to its final state."""
        ...


def load_executors() -> dict[str, Executor]:
    from service.augment.job import AugmentationExecutor
    from service.evaluate.generate_job import EvalSetGenerationExecutor
    from service.evaluate.job import EvaluationExecutor
    from service.training.job import TrainingExecutor

    executors: list[Executor] = [
        AugmentationExecutor(),
        TrainingExecutor(),
        EvaluationExecutor(),
        EvalSetGenerationExecutor(),
    ]
    return {e.kind: e for e in executors}
