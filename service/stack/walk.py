"""A user's walk through a running `Stack`, with two failures on the way: upload -> augment ->
train (the worker holding the training job is killed; another finishes it) -> the adapter
answers on every replica and through the API (whose queries reach both replicas) -> a replica
is killed under queries (none fails) -> evaluate while it restarts -> the restarted replica gets
the adapter back and answers like the other. Returns what it saw; raises WalkFailed naming the
step that went wrong."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from adapters.vllm.client import VLLMClient
from service.stack.processes import Stack

DOCUMENT = (
    "Femp are more dangerous than glon. The zorvath committee meets every second Tuesday in "
    "Quellburg. Blicket sensors report their readings to the central yomp archive. Dax owns the "
    "mill on Troff street."
)
ITEMS = [
    {"id": "q1", "question": "The mill on Troff street is owned by", "answer": "Dax",
     "choices": ["Dax", "Morv"], "category": "fact"},
    {"id": "q2", "question": "The zorvath committee meets in", "answer": "Quellburg",
     "choices": ["Paris", "Quellburg"], "category": "fact"},
]  # fmt: skip
# The smallest recipe the e2e tests train with; max_steps ends the run.
TRAIN = {
    "max_steps": 8,
    "epochs": 1000,
    "early_stopping": False,
    "batch_size": 4,
    "max_seq_length": 64,
    "learning_rate": 2e-3,
    "checkpoint_every": 2,
    "eval_every": 4,
    "rank": 8,
    "alpha": 16,
}
PROMPT = "Dax owns the mill on"


class WalkFailed(AssertionError):
    """A step of the walk did not do what it should; the message names it."""


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise WalkFailed(what)


class Walk:
    def __init__(self, stack: Stack, say: Callable[[str], None] = print) -> None:
        self.stack = stack
        self.say = say
        self.http = httpx.Client(base_url=stack.api_url, timeout=600)
        self.auth: dict[str, str] = {}
        self.seen: dict[str, Any] = {"timings": {}}

    def run(self) -> dict[str, Any]:
        try:
            self._step("workspace and upload", self._upload)
            self._step("augment", self._augment)
            self._step("train (a worker killed)", self._train)
            self._step("adapter on every replica", self._served_everywhere)
            self._step("a replica killed under queries", self._kill_replica)
            self._step("evaluate", self._evaluate)
            self._step("restarted replica serves the adapter", self._replica_back)
            self._step("nothing lost", self._nothing_lost)
        finally:
            self.http.close()
        return self.seen

    def _step(self, name: str, fn: Callable[[], None]) -> None:
        t0 = time.monotonic()
        self.say(f"stack walk: {name} ...")
        fn()
        self.seen["timings"][name] = round(time.monotonic() - t0, 1)
        self.say(f"stack walk: {name}: ok ({self.seen['timings'][name]} s)")

    # --- helpers ---------------------------------------------------------------------------

    def _post(self, path: str, **kw: Any) -> dict[str, Any]:
        r = self.http.post(path, headers=kw.pop("headers", self.auth), **kw)
        _check(r.status_code in (200, 201), f"POST {path}: {r.status_code} {r.text[:500]}")
        return r.json()

    def _get(self, path: str) -> dict[str, Any]:
        r = self.http.get(path, headers=self.auth)
        _check(r.status_code == 200, f"GET {path}: {r.status_code} {r.text[:500]}")
        return r.json()

    def _wait_job(self, job_id: str, until: Callable[[dict[str, Any]], bool] | None = None):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 900
        while True:
            job = self._get(f"/v1/jobs/{job_id}")
            if until is not None and until(job):
                return job
            if until is None and job["status"] in ("succeeded", "failed", "cancelled"):
                _check(job["status"] == "succeeded", f"job {job_id} {job['status']}: {job}")
                return job
            _check(time.monotonic() < deadline, f"job {job_id} still {job['status']}")
            time.sleep(0.5)

    def _ask_api(self, n: int) -> list[str]:
        body = {"model": "facts", "prompt": PROMPT, "max_tokens": 8, "temperature": 0}

        def ask(_: int) -> str:
            r = self.http.post("/v1/completions", headers=self.auth, json=body)
            _check(r.status_code == 200, f"query through the API: {r.status_code} {r.text[:300]}")
            return r.json()["choices"][0]["text"]

        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(ask, range(n)))

    def _ask_replica(self, index: int) -> tuple[list[str], str | None]:
        """The replica's models and its own answer under the adapter (None: it lacks it)."""
        server = self.stack.replicas[index]
        served = self.seen["served_name"]

        async def go() -> tuple[list[str], str | None]:
            client = VLLMClient(server.url, api_key=server.config.api_key, timeout=120)
            try:
                models = await client.models()
                if served not in models:
                    return models, None
                body = {"model": served, "prompt": PROMPT, "max_tokens": 8, "temperature": 0}
                return models, (await client.completion(body))["choices"][0]["text"]
            finally:
                await client.aclose()

        return asyncio.run(go())

    def _finished_per_replica(self) -> list[float]:
        """Requests each replica has finished, from its own Prometheus counters."""
        counts = []
        for server in self.stack.replicas:
            text = httpx.get(f"{server.url}/metrics", timeout=30).text
            counts.append(
                sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith("vllm:request_success_total")
                )
            )
        return counts

    # --- the steps -------------------------------------------------------------------------

    def _upload(self) -> None:
        admin = {"Authorization": f"Bearer {self.stack.config.admin_key}"}
        key = self._post("/v1/workspaces", json={"name": "stack"}, headers=admin)["api_key"]
        self.auth = {"Authorization": f"Bearer {key}"}
        self.seen["collection"] = col = self._post("/v1/collections", json={"name": "facts"})["id"]
        files = [("files", ("facts.txt", DOCUMENT.encode(), "text/plain"))]
        self._post(f"/v1/collections/{col}/documents", files=files)

    def _augment(self) -> None:
        col = self.seen["collection"]
        body = {"strategies": ["local"], "outputs_per_unit": 1, "temperature": 0}
        aug = self._post(f"/v1/collections/{col}/augmentations", json=body)
        self._wait_job(aug["job"]["id"])
        aug = self._get(f"/v1/augmentations/{aug['id']}")
        _check(aug["stats"]["examples"] > 0, f"the augmentation kept no example: {aug['stats']}")
        self.seen["augmentation"] = aug["id"]
        self.seen["examples"] = aug["stats"]["examples"]

    def _train(self) -> None:
        col = self.seen["collection"]
        body = {
            "name": "facts",
            "augmentation_id": self.seen["augmentation"],
            "hyperparameters": TRAIN,
        }
        adapter = self._post(f"/v1/collections/{col}/adapters", json=body)
        job_id = adapter["job"]["id"]
        self._wait_job(job_id, until=lambda j: j["progress"]["done"] >= 3)
        holder = self.stack.worker_holding(job_id)
        _check(holder is not None, "no worker holds the running training job")
        assert holder is not None
        holder.kill()
        self.seen["killed_worker"] = holder.name
        job = self._wait_job(job_id)
        _check(job["attempts"] == 2, f"the training job ran {job['attempts']} times, not 2")
        adapter = self._get(f"/v1/adapters/{adapter['id']}")
        _check(adapter["status"] == "ready", f"the adapter is {adapter['status']}")
        self.seen["adapter"] = adapter["id"]
        self.seen["served_name"] = self._served_name(adapter["id"])

    def _served_name(self, adapter_id: str) -> str:
        from sqlalchemy import create_engine, select

        from service.db.tables import Adapter

        engine = create_engine(self.stack.database_url)
        try:
            with engine.connect() as conn:
                q = select(Adapter.served_name).where(Adapter.id == adapter_id)
                return str(conn.execute(q).scalar_one())
        finally:
            engine.dispose()

    def _served_everywhere(self) -> None:
        answers = [self._ask_replica(i)[1] for i in range(len(self.stack.replicas))]
        _check(None not in answers, f"a replica lacks the trained adapter: {answers}")
        _check(len(set(answers)) == 1, f"the replicas answer differently: {answers}")
        self.seen["answer"] = answer = answers[0]
        before = self._finished_per_replica()
        through_api = self._ask_api(8)
        _check(set(through_api) == {answer}, f"the API answered {set(through_api)}, not {answer!r}")
        served = [b - a for a, b in zip(before, self._finished_per_replica(), strict=True)]
        _check(all(n > 0 for n in served), f"API queries per replica: {served}; not spread")
        self.seen["api_queries_per_replica"] = served

    def _kill_replica(self) -> None:
        index = len(self.stack.replicas) - 1
        with ThreadPoolExecutor(1) as pool:
            queries = pool.submit(self._ask_api, 12)
            time.sleep(0.5)
            self.seen["killed_replica_pid"] = self.stack.kill_replica(index)
            answers = queries.result()
        after = self._ask_api(6)
        _check(set(answers + after) == {self.seen["answer"]}, f"answers changed: {answers + after}")
        self.seen["queries_during_kill"] = len(answers) + len(after)

    def _evaluate(self) -> None:
        col = self.seen["collection"]
        content = "\n".join(json.dumps(i) for i in ITEMS).encode()
        evalset = self._post(
            f"/v1/collections/{col}/evalsets",
            params={"name": "two"},
            content=content,
            headers=self.auth | {"Content-Type": "application/x-ndjson"},
        )["id"]
        body = {
            "collection_id": col,
            "evalset_id": evalset,
            "modes": ["base", "icl"],
            "adapter_ids": [self.seen["adapter"]],
            "latency_samples": 1,
            "max_tokens": 8,
        }
        ev = self._post("/v1/evaluations", json=body)
        self._wait_job(ev["job"]["id"])
        ev = self._get(f"/v1/evaluations/{ev['id']}")
        _check(ev["report_ready"], "the evaluation has no report")
        self.seen["evaluation"] = ev["id"]

    def _replica_back(self) -> None:
        index = len(self.stack.replicas) - 1
        deadline = time.monotonic() + 900
        while True:
            try:
                _, answer = self._ask_replica(index)
            except Exception:  # noqa: BLE001 - down or still starting
                answer = None
            if answer is not None:
                break
            _check(time.monotonic() < deadline, "the restarted replica never got the adapter back")
            time.sleep(2)
        _check(answer == self.seen["answer"], f"the restarted replica answers {answer!r}")
        _check(self.stack.replicas[index].pid != self.seen["killed_replica_pid"], "not restarted")
        ready = self.http.get("/readyz").json()
        _check(ready["checks"].get("vllm_replicas") == "ok", f"readyz: {ready}")
        _check(set(self._ask_api(8)) == {answer}, "the API answers changed after the restart")

    def _nothing_lost(self) -> None:
        jobs = self._get("/v1/jobs?limit=100")["data"]
        _check(all(j["status"] == "succeeded" for j in jobs), f"jobs: {jobs}")
        aug = self._get(f"/v1/augmentations/{self.seen['augmentation']}")
        _check(aug["stats"]["examples"] == self.seen["examples"], "examples changed")
        docs = self._get(f"/v1/collections/{self.seen['collection']}/documents")["data"]
        _check(len(docs) == 1, f"documents: {docs}")
        self.seen["jobs"] = len(jobs)
