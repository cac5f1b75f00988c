"""A request holds a pooled database connection only while it uses the database: a chat query
that waits a minute on vLLM must not keep one (50 concurrent queries exhausted the pool of 15
and got 500s in `docadapt perf load` before authentication released its connection)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.core.deps import current_caller


def test_authentication_gives_its_connection_back_and_keeps_the_workspace(
    client: TestClient, auth: dict[str, str]
) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    token = auth["Authorization"].split(" ", 1)[1]
    with runtime.session_factory() as session:
        pool = session.get_bind().pool
        before = pool.checkedout()
        caller = current_caller(session, runtime, token)
        assert not session.in_transaction()
        assert pool.checkedout() == before
        # what the routes read of the caller needs no new transaction
        assert caller.workspace.id and caller.workspace.name == "acme" and caller.key_id
        assert not session.in_transaction()
