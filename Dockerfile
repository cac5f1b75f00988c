# docadapt GPU image. One image, three roles (deploy/README.md):
#   API        docadapt serve --host 0.0.0.0 --port 8000   (the default command)
#   worker     docadapt worker
#   vLLM       python -m vllm.entrypoints.openai.api_server ...   (entrypoint overridden)
# vLLM 0.33.0 comes from PyPI with the CUDA build of torch that it pins; those wheels bundle the
# CUDA libraries, so the base image needs no CUDA toolkit, only the host's NVIDIA driver.
# Status: written and reviewed, never built or run by the project (no Docker daemon, no GPU on its
# machines); see "What was checked" in deploy/README.md.
#
#   docker build -t docadapt:gpu .
FROM python:3.11-slim-bookworm

# gcc + libc6-dev: Triton (used by vLLM and torch) compiles a small C launcher on first use.
# tini: PID 1 that forwards SIGTERM and reaps vLLM's engine processes.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev tini \
 && rm -rf /var/lib/apt/lists/*

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DOCADAPT_VENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    VLLM_NO_USAGE_STATS=1 \
    DO_NOT_TRACK=1 \
    DOCADAPT_DATA_DIR=/data

WORKDIR /app

# Dependencies before code, so a code change does not reinstall vLLM and torch (several GB).
# install.sh installs the project editable (`pip install -e .[dev]`); two empty placeholder
# packages let that step run before the code exists. setuptools' editable finder maps the
# top-level folders, so the real modules copied below are the ones that import.
COPY pyproject.toml README.md ./
COPY scripts/install.sh scripts/requirements-nlp.txt scripts/
RUN mkdir -p service adapters \
 && touch service/__init__.py adapters/__init__.py \
 && bash scripts/install.sh --gpu \
 && /opt/venv/bin/python -m pip install --quiet -e ".[postgres]"

COPY . .

# Non-root. /data (files, adapters, logs) and /cache (vLLM/Triton/torch caches) exist in the
# image with this owner, so a fresh named volume mounted there is writable by it.
RUN useradd --create-home --uid 10001 --user-group docadapt \
 && mkdir -p /data /cache \
 && chown docadapt:docadapt /data /cache
USER 10001:10001
ENV HOME=/home/docadapt

EXPOSE 8000
ENTRYPOINT ["tini", "--", "docadapt"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
