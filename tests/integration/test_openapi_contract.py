"""The OpenAPI schema is the contract: one bearer security scheme, every route's error statuses
with the error envelope, non-JSON bodies declared as what they are; and the service does what
it says: one timestamp format with its zone (REST and SSE), Allow on 405, plain-word 422s."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi.testclient import TestClient

from tests.integration.conftest import new_workspace

ENVELOPE = {"$ref": "#/components/schemas/ErrorResponse"}
# RFC 3339 in UTC with a Z, as pydantic writes it.
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
    ]


def test_one_bearer_scheme_and_no_authorization_parameter(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"] == {
        "apiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "A workspace API key (dak_...), or the admin key for POST "
            "/v1/workspaces and GET /v1/audit.",
        }
    }
    unsecured = set()
    for method, path, op in _operations(schema):
        names = {p["name"].lower() for p in op.get("parameters", [])}
        assert "authorization" not in names, (method, path)
        if not op.get("security"):
            unsecured.add(path)
    assert unsecured == {"/healthz", "/readyz", "/metrics"}


def test_every_route_documents_its_errors_with_the_envelope(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for method, path, op in _operations(schema):
        responses = op["responses"]
        expected = set()
        if op.get("security"):
            expected.add("401")
        if "{" in path:
            expected.add("404")
        assert expected <= set(responses), (method, path, sorted(responses))
        for status, response in responses.items():
            if status.startswith(("4", "5")) and path != "/readyz":
                assert response["content"]["application/json"]["schema"] == ENVELOPE, (
                    method,
                    path,
                    status,
                )
    by_route = {(m, p): set(op["responses"]) for m, p, op in _operations(schema)}
    assert {"413", "415"} <= by_route[("POST", "/v1/collections/{collection_id}/documents")]
    assert "409" in by_route[("POST", "/v1/collections/{collection_id}/adapters")]
    assert {"400", "404", "503"} <= by_route[("POST", "/v1/chat/completions")]
    # Rate limits and the job cap: 429 with Retry-After where they apply, and nowhere else.
    limited = {
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/completions"),
        ("POST", "/v1/collections/{collection_id}/augmentations"),
        ("POST", "/v1/collections/{collection_id}/adapters"),
        ("POST", "/v1/collections/{collection_id}/evalsets"),
        ("POST", "/v1/evaluations"),
    }
    assert {route for route, statuses in by_route.items() if "429" in statuses} == limited
    for method, path, op in _operations(schema):
        if (method, path) in limited:
            retry_after = op["responses"]["429"]["headers"]["Retry-After"]
            assert retry_after["schema"] == {"type": "integer", "minimum": 1}
    assert "503" in by_route[("GET", "/readyz")]


def test_bodies_that_are_not_json_are_declared_as_what_they_are(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    def content(path: str, method: str = "get", status: str = "200") -> set[str]:
        return set(paths[path][method]["responses"][status]["content"])

    assert content("/metrics") == {"text/plain"}
    assert content("/v1/jobs/{job_id}/events") == {"text/event-stream"}
    assert content("/v1/adapters/{adapter_id}/download") == {"application/gzip"}
    assert content("/v1/evaluations/{evaluation_id}/cost-curve.png") == {"image/png"}
    assert content("/v1/augmentations/{augmentation_id}/examples") == {
        "application/x-ndjson",
        "application/json",
    }
    assert "text/event-stream" in content("/v1/chat/completions", "post")
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")


def test_a_method_the_path_does_not_serve_is_405_with_allow(
    client: TestClient, auth: dict[str, str]
) -> None:
    r = client.put("/v1/collections", headers=auth)
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD, POST"  # two routes share the path
    assert r.json()["error"]["code"] == "method_not_allowed"
    assert client.patch("/healthz").headers["Allow"] == "GET, HEAD"


def test_one_timestamp_format_with_its_zone_in_rest_and_sse(
    client: TestClient, auth: dict[str, str]
) -> None:
    created = client.post("/v1/collections", json={"name": "c"}, headers=auth).json()
    fetched = client.get(f"/v1/collections/{created['id']}", headers=auth).json()
    listed = client.get("/v1/collections", headers=auth).json()["data"][0]
    assert TIMESTAMP.match(created["created_at"]), created["created_at"]
    assert created["created_at"] == fetched["created_at"] == listed["created_at"]

    files = [("files", ("facts.txt", b"Femp are more dangerous than glon.", "text/plain"))]
    client.post(f"/v1/collections/{created['id']}/documents", files=files, headers=auth)
    r = client.post(f"/v1/collections/{created['id']}/adapters", json={"name": "a"}, headers=auth)
    job_id = r.json()["job"]["id"]
    cancelled = client.post(f"/v1/jobs/{job_id}/cancel", headers=auth).json()
    job = client.get(f"/v1/jobs/{job_id}", headers=auth).json()
    for key in ("created_at", "finished_at", "updated_at"):
        assert TIMESTAMP.match(job[key]) and job[key] == cancelled[key], (key, job, cancelled)
    adapter = client.get(f"/v1/adapters/{r.json()['id']}", headers=auth).json()
    assert (
        TIMESTAMP.match(adapter["created_at"]) and adapter["created_at"] == r.json()["created_at"]
    )

    with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=auth) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = [
            json.loads(line.removeprefix("data:").strip())
            for line in stream.iter_lines()
            if line.startswith("data:")
        ]
    assert events and events[-1]["status"] == "cancelled"
    for key in ("created_at", "finished_at", "updated_at"):
        assert events[-1][key] == job[key], (key, events[-1][key], job[key])
    # An adapter whose training job was cancelled before it ran still deletes (found by fuzzing:
    # it was a 409 "job already cancelled").
    assert client.delete(f"/v1/adapters/{r.json()['id']}", headers=auth).status_code == 204


def test_validation_errors_are_plain_words(client: TestClient, auth: dict[str, str]) -> None:
    col = client.post("/v1/collections", json={"name": "c"}, headers=auth).json()["id"]
    r = client.post(
        f"/v1/collections/{col}/augmentations", json={"strategies": ["bogus"]}, headers=auth
    )
    assert r.status_code == 422
    message = r.json()["error"]["message"]
    assert message == (
        "strategies[0]: should be 'local', 'decomposed', 'global', 'linked' or 'qa' "
        "(or strategies: should be 'both' or 'all')"
    )
    r = client.get("/v1/jobs?limit=0", headers=auth)
    assert (
        r.json()["error"]["message"]
        == "query parameter limit: should be greater than or equal to 1"
    )
    r = client.post("/v1/collections", content=b"{not json", headers=auth)
    assert r.status_code == 422 and "literal[" not in r.text and "list[" not in r.text


def test_a_missing_key_is_401_with_the_scheme(client: TestClient) -> None:
    r = client.get("/v1/collections")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert r.json()["error"]["message"].startswith("missing Authorization header")
    other = new_workspace(client, "other")
    assert client.get("/v1/collections", headers=other).status_code == 200


def test_every_json_answer_has_a_response_model(client: TestClient) -> None:
    """No route answers an untyped object: each JSON 2xx body is a named model's schema."""
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    untyped = []
    for method, path, op in _operations(schema):
        for status, response in op["responses"].items():
            body = response.get("content", {}).get("application/json")
            if not status.startswith("2") or body is None:
                continue
            ref = body["schema"].get("$ref", "")
            name = ref.removeprefix("#/components/schemas/")
            if not name or "properties" not in components.get(name, {}):
                untyped.append((method, path, status))
    assert untyped == []
    report = schema["paths"]["/v1/evaluations/{evaluation_id}/report"]["get"]["responses"]["200"]
    assert report["content"]["application/json"]["schema"]["$ref"].endswith("EvaluationReport")
