"""The query API through the official `openai` client against the real service and vLLM."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from openai import NotFoundError, OpenAI

from tests.e2e.service_fixtures import LiveService

pytestmark = pytest.mark.e2e


def adapter_archive(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for item in sorted(folder.iterdir()):
            tar.add(item, arcname=f"my-adapter/{item.name}")
    return buf.getvalue()


def import_adapter(svc: LiveService, auth: dict[str, str], folder: Path, name: str):
    return svc.client.post(
        "/v1/adapters/import",
        files={"file": ("adapter.tar.gz", adapter_archive(folder), "application/gzip")},
        data={"name": name},
        headers=auth,
    )


def openai_client(svc: LiveService, auth: dict[str, str]) -> OpenAI:
    key = auth["Authorization"].removeprefix("Bearer ")
    return OpenAI(base_url="http://testserver/v1", api_key=key, http_client=svc.client)


def test_imported_adapter_answers_through_openai_client(
    live_service: LiveService, make_random_adapter, tmp_path: Path
) -> None:
    svc = live_service
    auth = svc.new_workspace("a")
    r = import_adapter(svc, auth, make_random_adapter(tmp_path / "ad", seed=7), "handbook-v1")
    assert r.status_code == 201, r.text
    adapter = r.json()
    assert adapter["status"] == "ready" and adapter["source"] == "imported"
    assert adapter["artifact_sha256"]

    client = openai_client(svc, auth)
    base = client.completions.create(
        model="base", prompt="The capital of France is", max_tokens=8, temperature=0
    )
    tuned = client.completions.create(
        model="handbook-v1", prompt="The capital of France is", max_tokens=8, temperature=0
    )
    assert tuned.model == "handbook-v1"
    assert tuned.choices[0].text != base.choices[0].text  # random weights change the answer
    chat = client.chat.completions.create(
        model="handbook-v1", messages=[{"role": "user", "content": "Say hello."}], max_tokens=8
    )
    assert chat.usage is not None and chat.usage.prompt_tokens > 0
    pieces = list(
        client.chat.completions.create(
            model="base",
            messages=[{"role": "user", "content": "Count to three."}],
            max_tokens=12,
            temperature=0,
            stream=True,
        )
    )
    assert pieces and "".join(p.choices[0].delta.content or "" for p in pieces if p.choices)

    # Another workspace cannot see or use it, even by its name or id.
    other = openai_client(svc, svc.new_workspace("b"))
    with pytest.raises(NotFoundError):
        other.completions.create(model="handbook-v1", prompt="x", max_tokens=1)
    with pytest.raises(NotFoundError):
        other.completions.create(model=adapter["id"], prompt="x", max_tokens=1)
    b_auth = {"Authorization": f"Bearer {other.api_key}"}
    assert svc.client.get(f"/v1/adapters/{adapter['id']}", headers=b_auth).status_code == 404

    # Download gives back the same files; delete unloads it.
    r = svc.client.get(f"/v1/adapters/{adapter['id']}/download", headers=auth)
    assert r.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        assert {Path(n).name for n in tar.getnames()} >= {
            "adapter_config.json",
            "adapter_model.safetensors",
        }
    assert svc.client.delete(f"/v1/adapters/{adapter['id']}", headers=auth).status_code == 204
    with pytest.raises(NotFoundError):
        client.completions.create(model="handbook-v1", prompt="x", max_tokens=1)


def test_adapter_that_changes_nothing_fails_the_canary(
    live_service: LiveService, base_model_dir: Path, tmp_path: Path
) -> None:
    """A valid adapter whose B matrices are zero (peft's default init) loads fine in vLLM and
    answers exactly like base: the canary must turn that into a failed adapter with a reason.
    (Module names that match nothing are refused earlier by validation, and at the vLLM level
    the canary test in test_vllm_runtime.py covers them.)"""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_model_dir, local_files_only=True)
    peft_model = get_peft_model(
        model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    )
    peft_model.save_pretrained(tmp_path / "zero")
    svc = live_service
    auth = svc.new_workspace()
    r = import_adapter(svc, auth, tmp_path / "zero", "changes-nothing")
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "adapter_check_failed"
    assert "does not change the model" in error["message"]
    listed = svc.client.get("/v1/adapters", headers=auth).json()["data"]
    assert [(a["name"], a["status"]) for a in listed] == [("changes-nothing", "failed")]
    assert "does not change the model" in listed[0]["status_reason"]


def test_invalid_adapters_are_refused_with_422(
    live_service: LiveService, make_random_adapter, tmp_path: Path
) -> None:
    svc = live_service
    auth = svc.new_workspace()
    big = make_random_adapter(tmp_path / "r32", seed=4, rank=32)
    r = import_adapter(svc, auth, big, "too-big")
    assert r.status_code == 422 and "rank" in r.json()["error"]["message"]
    r = svc.client.post(
        "/v1/adapters/import",
        files={"file": ("x.tar.gz", b"not an archive", "application/gzip")},
        data={"name": "junk"},
        headers=auth,
    )
    assert r.status_code == 422


def test_icl_answers_from_the_collection_and_usage_is_recorded(live_service: LiveService) -> None:
    from sqlalchemy import select

    from service.db.tables import QueryRecord

    svc = live_service
    auth = svc.new_workspace()
    col = svc.client.post("/v1/collections", json={"name": "n"}, headers=auth).json()["id"]
    text = "The zorvath committee meets every second Tuesday in Quellburg. " * 3
    svc.client.post(
        f"/v1/collections/{col}/documents",
        files=[("files", ("a.txt", text.encode(), "text/plain"))],
        headers=auth,
    )
    client = openai_client(svc, auth)
    raw = client.chat.completions.with_raw_response.create(
        model=f"icl:{col}",
        messages=[{"role": "user", "content": "Where does it meet?"}],
        max_tokens=16,
        temperature=0,
    )
    answer = raw.parse()
    assert raw.headers["x-docadapt-mode"] == "icl"
    assert raw.headers["x-docadapt-context-truncated"] == "false"
    assert answer.usage.prompt_tokens > 30  # the documents are in the prompt
    other = openai_client(svc, svc.new_workspace("b"))
    with pytest.raises(NotFoundError):
        other.chat.completions.create(
            model=f"icl:{col}", messages=[{"role": "user", "content": "x"}], max_tokens=1
        )
    runtime = svc.client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.session_factory() as session:
        rows = list(session.scalars(select(QueryRecord)))
    assert [(r.mode, r.collection_id) for r in rows] == [("icl", col)]
    assert rows[0].prompt_tokens == answer.usage.prompt_tokens
