"""PII redaction through the real augmentation path: the API queues a local augmentation, the
service's worker runs it against an external teacher (a real HTTP server playing one), and the
teacher never sees the documents' personal data while the statements it writes get it back."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.core.config import Settings
from service.jobs.worker import Worker
from service.main import create_app
from tests.fixtures.scripted_teacher import Reply, ScriptedServer, completion_body
from tests.integration.conftest import new_workspace

MEMO = (
    "Priya Raman leads the Leeds office. Clients reach her at priya.raman@northwind-legal.co.uk "
    "or on +44 20 7946 0958. Refunds are paid to IBAN GB82 WEST 1234 5698 7654 32."
)
PII = [
    "Priya",
    "Raman",
    "priya.raman@northwind-legal.co.uk",
    "+44 20 7946 0958",
    "GB82 WEST 1234 5698 7654 32",
]
UNIT_RE = re.compile(r"Statement: (.*)\nFollows:\n-\s*$")


def _teacher(number: int, payload: dict[str, Any]) -> Reply:
    """Reverses "X leads the Leeds office" with the placeholder it was given, and adds one
    statement about a placeholder it makes up; anything else it copies (dropped as a copy)."""
    unit = UNIT_RE.search(payload["prompt"])
    assert unit is not None, payload["prompt"][-200:]
    text = unit.group(1)
    lead = re.match(r"(.+) leads the Leeds office\.$", text)
    if lead:
        person = lead.group(1)
        answer = f" The Leeds office is led by {person}.\n- The Leeds office is led by <PERSON_9>."
    else:
        answer = f" {text}"
    return 200, {}, completion_body([answer])


@pytest.fixture
def teacher() -> Iterator[ScriptedServer]:
    with ScriptedServer(_teacher) as server:
        yield server


@pytest.fixture
def client(make_settings: Callable[..., Settings], teacher: ScriptedServer) -> Iterator[TestClient]:
    # The default teacher is an external endpoint: the operator's policy redacts for it.
    with TestClient(create_app(make_settings(teacher_base_url=teacher.url))) as c:
        yield c


def _augment(client: TestClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    col = client.post("/v1/collections", json={"name": "memo"}, headers=auth).json()["id"]
    files = [("files", ("memo.txt", MEMO.encode(), "text/plain"))]
    assert client.post(f"/v1/collections/{col}/documents", files=files, headers=auth).is_success
    body = {"strategies": ["local"], "outputs_per_unit": 1, "temperature": 0.0, **body}
    r = client.post(f"/v1/collections/{col}/augmentations", json=body, headers=auth)
    assert r.status_code == 201, r.text
    Worker(client.app.state.runtime.settings).run(once=True)  # type: ignore[attr-defined]
    r = client.get(f"/v1/augmentations/{r.json()['id']}", headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "succeeded", r.text
    return r.json()


def test_the_teacher_sees_no_personal_data_and_the_augmentation_says_what_was_redacted(
    client: TestClient, teacher: ScriptedServer
) -> None:
    auth = new_workspace(client)
    aug = _augment(client, auth)

    prompts = [p["prompt"] for p in teacher.payloads]
    assert len(prompts) == 3  # one a sentence
    for prompt in prompts:
        for value in PII:
            assert value not in prompt, value
    units = sorted(UNIT_RE.search(p).group(1) for p in prompts)  # type: ignore[union-attr]
    assert units == [
        "<PERSON_1> leads the Leeds office.",
        "Clients reach her at <EMAIL_1> or on <PHONE_1>.",
        "Refunds are paid to IBAN <IBAN_1>.",
    ]

    redaction = aug["stats"]["redaction"]
    assert (redaction["enabled"], redaction["decided_by"], redaction["teacher"]) == (
        True,
        "setting:external",
        "external",
    )
    assert redaction["counts"] == {"EMAIL": 1, "IBAN": 1, "PERSON": 1, "PHONE": 1}
    assert redaction["redacted"] == [
        {
            "type": "EMAIL",
            "placeholder": "<EMAIL_1>",
            "value": "priya.raman@northwind-legal.co.uk",
            "replaced": 1,
        },
        {
            "type": "IBAN",
            "placeholder": "<IBAN_1>",
            "value": "GB82 WEST 1234 5698 7654 32",
            "replaced": 1,
        },
        {"type": "PERSON", "placeholder": "<PERSON_1>", "value": "Priya Raman", "replaced": 1},
        {"type": "PHONE", "placeholder": "<PHONE_1>", "value": "+44 20 7946 0958", "replaced": 1},
    ]
    assert (redaction["prompts"], redaction["prompts_redacted"]) == (3, 3)

    # The statement about the real person is kept; the one about a made-up placeholder is not.
    lines = client.get(f"/v1/augmentations/{aug['id']}/examples", headers=auth).text.splitlines()
    assert [json.loads(line)["text"] for line in lines] == [
        "The Leeds office is led by Priya Raman."
    ]
    dropped = aug["stats"]["strategies"]["local"]["dropped"]
    assert dropped["unrestorable_placeholder"] == 1


def test_a_request_can_send_the_text_as_it_is(client: TestClient, teacher: ScriptedServer) -> None:
    auth = new_workspace(client)
    aug = _augment(client, auth, redact_pii=False)
    assert aug["params"]["redact_pii"] is False
    assert aug["stats"]["redaction"] == {
        "enabled": False,
        "decided_by": "request",
        "teacher": "external",
    }
    sent = "\n".join(p["prompt"] for p in teacher.payloads)
    for value in PII:
        assert value in sent, value
