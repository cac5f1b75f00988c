# The two commands a newcomer needs: `make serve` and `make test`. Both install first.
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install install-gpu serve test lint stack validate-deploy

install:
	bash scripts/install.sh

install-gpu:
	bash scripts/install.sh --gpu

serve: install
	$(VENV)/bin/docadapt serve --host $(HOST) --port $(PORT)

test: install
	$(VENV)/bin/pytest

lint:
	$(VENV)/bin/ruff check service adapters tests

# PostgreSQL, two vLLM replicas, the API and two workers as separate processes, walked through
# upload -> augment -> train -> query -> evaluate with a worker and a replica killed on the way.
stack: install
	$(VENV)/bin/docadapt stack

# The compose file against the Compose Specification schema and the Kubernetes manifests against
# Kubernetes' own schemas, with validators from PyPI in a throwaway venv (deploy/README.md).
DEPLOY_CHECK_VENV ?= /tmp/docadapt-deploy-check
K8S_FILES = api configmap migrate-job model-loader pvc secret vllm worker
validate-deploy:
	python3 -m venv $(DEPLOY_CHECK_VENV)
	$(DEPLOY_CHECK_VENV)/bin/pip install -q check-jsonschema==0.39.0 kubernetes-validate==1.37.0
	$(DEPLOY_CHECK_VENV)/bin/check-jsonschema --builtin-schema vendor.compose-spec deploy/compose.gpu.yaml
	for v in 1.30.0 1.37.0; do \
		$(DEPLOY_CHECK_VENV)/bin/kubernetes-validate --strict --quiet -k $$v \
			$(foreach f,$(K8S_FILES),deploy/k8s/$(f).yaml) || exit 1; \
	done
