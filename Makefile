# The two commands a newcomer needs: `make serve` and `make test`. Both install first.
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install install-gpu serve test lint

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
