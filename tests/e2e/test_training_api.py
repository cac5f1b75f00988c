"""Training through the REST API: a real worker trains a LoRA adapter on the CPU, the adapter is
loaded into vLLM behind the canary, and it raises the likelihood of what it was trained on."""

from __future__ import annotations

import asyncio
import io
import json
import re
import tarfile
from pathlib import Path

import pytest
from rich.console import Console

from adapters.vllm.client import VLLMClient
from service.client import ServiceClient
from service.jobs.watch import watch_job
from service.training.registry import folder_sha256
from tests.e2e.service_fixtures import LiveService

pytestmark = pytest.mark.e2e

FACTS = [
    "Femp are more dangerous than glon.",
    "The zorvath committee meets every second Tuesday in Quellburg.",
    "Blicket sensors report their readings to the central yomp archive.",
    "Dax owns the mill on Troff street.",
]
# max_steps is the bound that ends these runs (epochs far above it, no early stopping), so the
# step counts below are exact.
TINY = {
    "max_steps": 12,
    "epochs": 1000,
    "early_stopping": False,
    "batch_size": 4,
    "max_seq_length": 64,
    "learning_rate": 2e-3,
    "checkpoint_every": 3,
    "eval_every": 6,
    "rank": 8,
    "alpha": 16,
}


def _collection(svc: LiveService, auth: dict[str, str]) -> str:
    col = svc.client.post("/v1/collections", json={"name": "facts"}, headers=auth).json()["id"]
    files = [("files", ("facts.txt", " ".join(FACTS).encode(), "text/plain"))]
    assert (
        svc.client.post(f"/v1/collections/{col}/documents", files=files, headers=auth).status_code
        == 201
    )
    return col


async def _logprob(svc: LiveService, model: str, text: str) -> float:
    s = svc.settings
    client = VLLMClient(str(s.vllm_url), api_key=s.vllm_api_key.get_secret_value())
    try:
        lp = await client.prompt_logprobs(model, text)
    finally:
        await client.aclose()
    return lp.sum_from(1)


def test_train_resume_after_kill_and_serve(
    live_service: LiveService, start_worker, tmp_path: Path
) -> None:
    svc = live_service
    auth = svc.new_workspace()
    col = _collection(svc, auth)
    r = svc.client.post(
        f"/v1/collections/{col}/adapters",
        json={"name": "facts-plain", "hyperparameters": TINY},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    adapter = r.json()
    assert adapter["status"] == "queued" and adapter["augmentation_id"] is None
    job_id = adapter["job"]["id"]

    worker = start_worker()
    job = svc.wait_job(auth, job_id, until=lambda j: j["progress"]["done"] >= 4)
    assert job["metrics"]["loss"] > 0 and job["metrics"]["tokens_per_second"] > 0
    assert job["progress"]["total"] == TINY["max_steps"]
    worker.kill()  # after the step-3 checkpoint
    second = start_worker()
    # Followed as `docadapt jobs watch` shows it: a progress bar to the last step.
    screen = io.StringIO()
    job = watch_job(
        ServiceClient(svc.client, headers=auth),
        job_id,
        timeout_s=900,
        console=Console(file=screen, width=160),
    )
    assert job["status"] == "succeeded", (job, second.log()[-3000:])
    assert f"{TINY['max_steps']}/{TINY['max_steps']}" in screen.getvalue(), screen.getvalue()
    assert job["attempts"] == 2
    assert re.search(r"resuming from .* at step [1-9]", second.log()), second.log()[-3000:]

    adapter = svc.client.get(f"/v1/adapters/{adapter['id']}", headers=auth).json()
    assert adapter["status"] == "ready", adapter
    m = adapter["metrics"]
    assert m["steps"] == TINY["max_steps"]
    curve = [loss for _, loss in m["loss_curve"]]
    assert len(curve) == TINY["max_steps"]  # the resumed run kept the curve before the kill
    assert min(curve[-3:]) < curve[0]  # the loss fell
    assert adapter["dataset_hash"] and adapter["artifact_sha256"] and adapter["base_model_hash"]
    assert set(adapter["document_versions"]) and adapter["hyperparameters"]["train"]["rank"] == 8
    # Whether training took: probes from the documents, the adapter against the base model. On
    # four sentences trained 12 steps the adapter must at least match the base model.
    knowledge = m["knowledge"]
    assert knowledge["probes"] >= 1 and knowledge["adapter"] >= knowledge["base"], knowledge

    # Through vLLM, the adapter finds a trained sentence likelier than the base model does.
    served = _served_name(svc, adapter["id"])
    sentence = FACTS[1]
    assert asyncio.run(_logprob(svc, served, sentence)) > asyncio.run(
        _logprob(svc, "base", sentence)
    )

    r = svc.client.get(f"/v1/adapters/{adapter['id']}/download", headers=auth)
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        tar.extractall(tmp_path / "download", filter="data")
    (folder,) = (tmp_path / "download").iterdir()
    names = {p.name for p in folder.iterdir()}
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "train_config.json",  # the resolved config travels with the adapter
        "metrics.json",
        "loss_curve.png",
    } <= names
    assert json.loads((folder / "train_config.json").read_text())["rank"] == 8
    # The checksum in the registry (and the download's header) covers every file shipped.
    assert folder_sha256(folder) == r.headers["X-Artifact-SHA256"] == adapter["artifact_sha256"]
    # The export names its base model, never a server path, and its card says what it is; it
    # imports back as it is, on the same base model.
    exported = json.loads((folder / "adapter_config.json").read_text())
    assert exported["base_model_name_or_path"] == adapter["base_model"] == "SmolLM2-135M-Instruct"
    card = (folder / "README.md").read_text()
    assert "More Information Needed" not in card and "Knowledge check" in card, card
    again = svc.client.post(
        "/v1/adapters/import",
        files={"file": ("facts-plain.tar.gz", r.content, "application/gzip")},
        data={"name": "facts-plain-again"},
        headers=auth,
    )
    assert again.status_code == 201, again.text
    assert again.json()["status"] == "ready" and again.json()["source"] == "imported"


def _served_name(svc: LiveService, adapter_id: str) -> str:
    from service.db.tables import Adapter

    runtime = svc.client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.session_factory() as session:
        return session.get(Adapter, adapter_id).served_name


def test_cancel_and_invalid_hyperparameters(live_service: LiveService, start_worker) -> None:
    svc = live_service
    auth = svc.new_workspace()
    col = _collection(svc, auth)
    for bad in ({"rank": 64}, {"learning_rate": -1}, {"no_such_knob": 1}):
        r = svc.client.post(
            f"/v1/collections/{col}/adapters",
            json={"name": "bad", "hyperparameters": bad},
            headers=auth,
        )
        assert r.status_code == 422, (bad, r.text)
    runtime = svc.client.app.state.runtime  # type: ignore[attr-defined]
    from service.db.tables import Job

    with runtime.session_factory() as session:
        assert session.query(Job).count() == 0  # refused before any job started

    r = svc.client.post(
        f"/v1/collections/{col}/adapters",
        json={"name": "long", "hyperparameters": {**TINY, "max_steps": 400}},
        headers=auth,
    )
    adapter, job_id = r.json(), r.json()["job"]["id"]
    start_worker()
    svc.wait_job(auth, job_id, until=lambda j: j["progress"]["done"] >= 1)
    api = ServiceClient(svc.client, headers=auth)
    assert api.cancel_job(job_id)["id"] == job_id  # as `docadapt jobs cancel`
    screen = io.StringIO()
    job = watch_job(api, job_id, timeout_s=180, console=Console(file=screen))
    assert job["status"] == "cancelled"
    assert "cancelled" in screen.getvalue(), screen.getvalue()
    adapter = svc.client.get(f"/v1/adapters/{adapter['id']}", headers=auth).json()
    assert adapter["status"] == "failed" and "cancelled" in adapter["status_reason"]
