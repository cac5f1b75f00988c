"""The stack as separate processes (`docadapt stack`): PostgreSQL, two vLLM replicas, the API and
two workers, walked through upload -> augment -> train -> query -> evaluate while the worker
holding the training job and one replica are killed (service/stack/walk.py says each check)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from service.stack.processes import Stack, StackConfig
from service.stack.walk import Walk, WalkFailed

pytestmark = pytest.mark.e2e


def test_the_stack_loses_nothing_when_a_worker_and_a_replica_die(
    base_model_dir: Path, tmp_path: Path
) -> None:
    config = StackConfig(
        root=tmp_path / "stack",
        base_model_path=base_model_dir,
        kv_cache_gb=1,  # three vLLMs may run at once in the suite (the session's and these two)
        isolation_check=False,  # tests/e2e/test_isolation.py covers it; the start stays short
    )
    t0 = time.monotonic()
    with Stack(config) as stack:
        try:
            seen = Walk(stack).run()
        except WalkFailed as exc:
            logs = {p.name: p.read_text(errors="replace")[-2000:] for p in stack.logs.iterdir()}
            raise AssertionError(f"{exc}\n\nlogs:\n{logs}") from exc
        pids = [stack.api.pid if stack.api else None, *(w.pid for w in stack.workers)]
    wall = time.monotonic() - t0
    assert seen["killed_worker"] and seen["queries_during_kill"] == 18
    assert all(n > 0 for n in seen["api_queries_per_replica"])  # the API used both replicas
    assert seen["jobs"] == 3  # augmentation, training, evaluation: each succeeded once
    print(f"stack walk: {seen['timings']}, start {stack.timings}, wall {wall:.0f} s")
    # Every process the stack started is gone.
    for pid in pids:
        assert pid is None or not Path(f"/proc/{pid}").exists() or _zombie(pid)
    assert all(not r.is_alive() for r in stack.replicas)


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
