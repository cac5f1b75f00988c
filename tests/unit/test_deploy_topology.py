"""The compose file and the Kubernetes manifests describe the topology `docadapt stack` runs
(tests/e2e/test_stack.py): PostgreSQL, two vLLM replicas whose URLs the API and the workers get in
DOCADAPT_VLLM_URL, the API with no vLLM or workers of its own, and two workers. Schema validation
is `make validate-deploy` (check-jsonschema and kubernetes-validate from PyPI)."""

from __future__ import annotations

from pathlib import Path

import yaml

from adapters.vllm.replicas import split_urls

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _k8s(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()) if d]


def test_compose_runs_two_vllm_replicas_that_the_api_and_workers_both_use() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.gpu.yaml").read_text())
    services = compose["services"]
    replicas = [name for name in services if name.startswith("vllm")]
    assert replicas == ["vllm-1", "vllm-2"]
    assert [n for n in services if n.startswith("worker")] == ["worker-1", "worker-2"]
    gpus = {n: s["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"][0]
            for n, s in services.items() if "deploy" in s}  # fmt: skip
    assert len(set(gpus.values())) == 4, gpus  # one GPU each, none shared by default
    for name in ("api", "worker-1", "worker-2"):
        url = services[name]["environment"]["DOCADAPT_VLLM_URL"]
        default = url.split(":-", 1)[1].rstrip("}")
        assert split_urls(default) == [f"http://{r}:8000" for r in replicas], name
    assert services["api"]["environment"]["DOCADAPT_WORKERS"] == "0"
    assert set(services["api"]["depends_on"]) == {"postgres", *replicas}
    for name in replicas:
        assert services[name]["restart"] == "unless-stopped"  # a dead replica comes back


def test_kubernetes_names_each_vllm_replica_in_the_services_url_list() -> None:
    stateful, service = _k8s("vllm.yaml")
    assert stateful["kind"] == "StatefulSet" and service["spec"]["clusterIP"] == "None"
    name, count = stateful["metadata"]["name"], stateful["spec"]["replicas"]
    assert stateful["spec"]["serviceName"] == service["metadata"]["name"] == name
    (config,) = _k8s("configmap.yaml")
    urls = split_urls(config["data"]["DOCADAPT_VLLM_URL"])
    assert urls == [f"http://{name}-{i}.{name}:8000" for i in range(count)] and count == 2
    (worker, *_) = _k8s("worker.yaml")
    assert worker["spec"]["replicas"] == 2
