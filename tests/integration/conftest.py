from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from service.core.config import Settings
from service.main import create_app
from tests.conftest import ADMIN_KEY


@pytest.fixture
def client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings())) as c:
        yield c


def new_workspace(client: TestClient, name: str = "acme") -> dict[str, str]:
    """Create a workspace with the admin key; returns auth headers of its first key."""
    r = client.post(
        "/v1/workspaces", json={"name": name}, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['api_key']}"}


@pytest.fixture
def auth(client: TestClient) -> dict[str, str]:
    return new_workspace(client)
