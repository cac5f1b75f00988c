"""The workers a service runs are kept alive: a killed worker is replaced, the job it held is
resumed at once by the replacement (not an hour later when its lease would lapse), and a worker
that keeps dying is left down and reported."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from service.core.config import Settings
from service.db.tables import Job, utcnow
from service.jobs.worker import owner_prefix
from service.main import create_app
from tests.integration.conftest import new_workspace
from tests.integration.test_jobs import ALLOW_DEAD_TEACHER, _queued_augmentation


@pytest.fixture
def served(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(workers=1, **ALLOW_DEAD_TEACHER))) as c:
        yield c


def _wait_for(predicate: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s: {what}")


def _job(client: TestClient, job_id: str) -> Job:
    with client.app.state.runtime.session_factory() as session:  # type: ignore[attr-defined]
        return session.get(Job, job_id)


def test_a_killed_worker_is_replaced_and_its_job_resumed_at_once(served: TestClient) -> None:
    pool = served.app.state.runtime.worker_pool  # type: ignore[attr-defined]
    (first,) = _wait_for(lambda: pool.pids, 30, "the first worker")
    log = served.app.state.runtime.settings.data_dir / "logs" / "worker-0.log"  # type: ignore[attr-defined]
    _wait_for(lambda: "ready for jobs" in log.read_text(), 60, "the first worker ready")
    auth = new_workspace(served)
    job_id = _queued_augmentation(served, auth)
    # The first worker holds the job under a lease that would not lapse for an hour.
    with served.app.state.runtime.session_factory() as session:  # type: ignore[attr-defined]
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(
                status="running",
                attempts=1,
                lease_owner=f"{owner_prefix(first)}abc123",
                lease_expires_at=utcnow() + timedelta(hours=1),
            )
        )
        session.commit()

    os.kill(first, signal.SIGKILL)
    (second,) = _wait_for(lambda: [p for p in pool.pids if p != first], 30, "a replacement worker")
    assert served.get("/readyz").json()["checks"]["workers"] == "ok"
    # The replacement claims the job as soon as it is up: a second attempt, under its name.
    job = _wait_for(lambda: (j := _job(served, job_id)).attempts == 2 and j, 60, "job resumed")
    assert job.lease_owner is None or job.lease_owner.startswith(owner_prefix(second))
    text = log.read_text()
    assert text.count("ready for jobs") == 2, text[-2000:]
    assert f"resuming job {job_id} (attempt 2)" in text, text[-2000:]


def test_a_worker_that_keeps_dying_is_left_down(served: TestClient) -> None:
    pool = served.app.state.runtime.worker_pool  # type: ignore[attr-defined]
    pool.max_restarts = 1
    (first,) = _wait_for(lambda: pool.pids, 30, "the first worker")
    os.kill(first, signal.SIGKILL)
    (second,) = _wait_for(lambda: [p for p in pool.pids if p != first], 30, "a replacement")
    os.kill(second, signal.SIGKILL)
    _wait_for(lambda: pool.slots[0].given_up, 30, "the pool gives up on the slot")
    time.sleep(2 * pool.poll_s)
    assert pool.pids == []
    assert served.get("/readyz").json()["checks"]["workers"] == "0 of 1 running"
