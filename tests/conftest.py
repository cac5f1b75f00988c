"""Shared fixtures. Every test runs with its data, caches and environment in temporary folders,
so no test touches the user's files; the base model is materialized once per session."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from service.core.config import Settings

ADMIN_KEY = "test-admin-key-0123456789abcdefghij"
# Read at import: the autouse _isolated_environment fixture removes DOCADAPT_* before fixtures run.
_PRESET_MODEL_DIR = os.environ.get("DOCADAPT_TEST_MODEL_DIR")

pytest_plugins = ["tests.e2e.service_fixtures"]


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("session")


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment(session_dir: Path) -> Iterator[None]:
    """No DOCADAPT_* from the caller's shell; caches of vLLM/torch/HF under the session dir."""
    saved = dict(os.environ)
    for name in list(os.environ):
        # DOCADAPT_TEST_* only point tests at prepared resources (see tests/e2e/conftest.py).
        if name.startswith("DOCADAPT_") and not name.startswith("DOCADAPT_TEST_"):
            del os.environ[name]
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["VLLM_CACHE_ROOT"] = str(session_dir / "vllm-cache")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(session_dir / "inductor-cache")
    os.environ["HF_HOME"] = str(session_dir / "hf-home")
    os.environ["MPLCONFIGDIR"] = str(session_dir / "mpl")
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def base_model_dir(session_dir: Path) -> Path:
    """The embedded base model, materialized once for the whole test session."""
    from adapters.base_model import materialize_base_model

    preset = _PRESET_MODEL_DIR
    if preset:
        return Path(preset)
    return materialize_base_model(session_dir / "model-data", None)


@pytest.fixture
def make_settings(tmp_path: Path, base_model_dir: Path) -> Callable[..., Settings]:
    """Settings for an app in a fresh data dir: no vLLM and no workers unless asked for."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "admin_key": ADMIN_KEY,
            "base_model_path": base_model_dir,
            "start_vllm": False,
            "workers": 0,
        }
        values.update(overrides)
        return Settings(**values)

    return make
