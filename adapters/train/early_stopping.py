"""When to evaluate and when to stop: about ten evaluations a run, and early stopping once the
knowledge check (or, without probes, the held-out loss) stops improving."""

from __future__ import annotations

import math

from adapters.knowledge import KNOWLEDGE_TARGET
from adapters.train.history import History


def auto_eval_every(total_steps: int, steps_per_epoch: int) -> int:
    """About ten evaluations a run, and at least one an epoch, so a short run shows progress
    and early stopping can act within an epoch of the plateau."""
    return max(1, min(steps_per_epoch, math.ceil(total_steps / 10)))


def plateaued(history: History, patience: int) -> bool:
    """Whether training has stopped improving: the knowledge check's accuracy where there are
    probes, else the held-out loss, has not beaten its best for the last `patience`
    evaluations. A check at 100% has nothing left to improve (on the dev set the held-out loss
    rose over the 3 epochs after it). Below the check's target a flat accuracy may only mean
    that learning has not shown yet, so there the held-out loss must have stalled too."""

    def stalled(values: list[float]) -> bool:  # higher is better
        return len(values) > patience and max(values[-patience:]) <= max(values[:-patience])

    knowledge = [v for _, v in history.knowledge]
    losses = [-v for _, v in history.held_out]
    if knowledge and knowledge[-1] >= 1.0:
        return True
    if knowledge and max(knowledge) >= KNOWLEDGE_TARGET:
        return stalled(knowledge)
    if knowledge:
        return stalled(knowledge) and (not losses or stalled(losses))
    return stalled(losses)
