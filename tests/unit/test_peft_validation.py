"""validate_peft_adapter and safe_extract_archive on tiny synthetic adapters and base models
(real safetensors files with the shapes of a two-layer Llama; no weights are loaded)."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from adapters.peft_validation import (
    AdapterArchiveError,
    adapter_rank,
    safe_extract_archive,
    validate_peft_adapter,
)

HIDDEN, INTER, KV = 16, 32, 8
BASE_SHAPES = {
    "q_proj": (HIDDEN, HIDDEN),
    "k_proj": (KV, HIDDEN),
    "v_proj": (KV, HIDDEN),
    "o_proj": (HIDDEN, HIDDEN),
    "gate_proj": (INTER, HIDDEN),
    "up_proj": (INTER, HIDDEN),
    "down_proj": (HIDDEN, INTER),
}


def _module_path(layer: int, name: str) -> str:
    group = "mlp" if name in ("gate_proj", "up_proj", "down_proj") else "self_attn"
    return f"model.layers.{layer}.{group}.{name}"


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "base"
    folder.mkdir()
    tensors = {"model.embed_tokens.weight": np.zeros((50, HIDDEN), np.float32)}
    for layer in range(2):
        for name, shape in BASE_SHAPES.items():
            tensors[f"{_module_path(layer, name)}.weight"] = np.zeros(shape, np.float32)
        tensors[f"model.layers.{layer}.input_layernorm.weight"] = np.zeros(HIDDEN, np.float32)
    save_file(tensors, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return folder


def write_adapter(
    folder: Path,
    *,
    r: int = 4,
    targets: tuple[str, ...] = ("q_proj", "v_proj"),
    config_extra: dict | None = None,
    shape_override: dict[str, tuple[int, int]] | None = None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "peft_type": "LORA",
        "r": r,
        "lora_alpha": 2 * r,
        "target_modules": list(targets),
        "modules_to_save": None,
        "use_dora": False,
        "bias": "none",
        "task_type": "CAUSAL_LM",
    }
    config.update(config_extra or {})
    (folder / "adapter_config.json").write_text(json.dumps(config))
    tensors = {}
    for layer in range(2):
        for name in targets:
            out_f, in_f = BASE_SHAPES[name]
            key = f"base_model.model.{_module_path(layer, name)}"
            a_shape = (shape_override or {}).get(f"{key}.lora_A", (r, in_f))
            tensors[f"{key}.lora_A.weight"] = np.ones(a_shape, np.float32)
            tensors[f"{key}.lora_B.weight"] = np.ones((out_f, r), np.float32)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    return folder


def test_valid_adapter_has_no_problems(tmp_path: Path, base_dir: Path) -> None:
    adapter = write_adapter(tmp_path / "ok", targets=tuple(BASE_SHAPES))
    assert validate_peft_adapter(adapter, base_dir, max_lora_rank=16) == []
    assert adapter_rank(adapter) == 4


def test_modules_to_save_is_refused(tmp_path: Path, base_dir: Path) -> None:
    adapter = write_adapter(tmp_path / "a", config_extra={"modules_to_save": ["lm_head"]})
    problems = validate_peft_adapter(adapter, base_dir, max_lora_rank=16)
    assert any("modules_to_save" in p for p in problems), problems


def test_dora_is_refused(tmp_path: Path, base_dir: Path) -> None:
    adapter = write_adapter(tmp_path / "a", config_extra={"use_dora": True})
    problems = validate_peft_adapter(adapter, base_dir, max_lora_rank=16)
    assert any("DoRA" in p for p in problems), problems


def test_rank_above_the_server_maximum_is_refused(tmp_path: Path, base_dir: Path) -> None:
    adapter = write_adapter(tmp_path / "a", r=32)
    problems = validate_peft_adapter(adapter, base_dir, max_lora_rank=16)
    assert any("greater than the server's maximum 16" in p for p in problems), problems
    patterned = write_adapter(tmp_path / "b", r=4, config_extra={"rank_pattern": {"q_proj": 64}})
    assert adapter_rank(patterned) == 64
    assert validate_peft_adapter(patterned, base_dir, max_lora_rank=16)


def test_shape_mismatch_is_refused(tmp_path: Path, base_dir: Path) -> None:
    key = f"base_model.model.{_module_path(1, 'q_proj')}.lora_A"
    adapter = write_adapter(tmp_path / "a", shape_override={key: (4, HIDDEN + 8)})
    problems = validate_peft_adapter(adapter, base_dir, max_lora_rank=16)
    assert len(problems) == 1 and "model.layers.1.self_attn.q_proj" in problems[0], problems
    assert "do not fit the base layer" in problems[0]


def test_modules_missing_from_the_base_are_refused(tmp_path: Path, base_dir: Path) -> None:
    adapter = write_adapter(tmp_path / "a")
    # Rename the weights to module paths the base does not have (peft from another model).
    from safetensors.numpy import load_file

    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    save_file(
        {k.replace(".layers.", ".blocks."): v for k, v in tensors.items()},
        str(adapter / "adapter_model.safetensors"),
    )
    problems = validate_peft_adapter(adapter, base_dir, max_lora_rank=16)
    assert any("model.blocks.0.self_attn.q_proj does not exist" in p for p in problems), problems


def test_target_module_names_must_exist(tmp_path: Path, base_dir: Path) -> None:
    adapter = write_adapter(tmp_path / "a")
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["target_modules"] = ["q_proj", "c_attn"]
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    problems = validate_peft_adapter(adapter, base_dir, max_lora_rank=16)
    assert problems == ["target modules ['c_attn'] do not exist in the base model"]


def test_pickle_weights_are_refused(tmp_path: Path, base_dir: Path) -> None:
    adapter = write_adapter(tmp_path / "a")
    (adapter / "adapter_model.safetensors").rename(adapter / "adapter_model.bin")
    problems = validate_peft_adapter(adapter, base_dir, max_lora_rank=16)
    assert any("pickle" in p for p in problems), problems


@pytest.mark.parametrize("cut", ["header", "weights"])
def test_damaged_weights_are_not_a_valid_safetensors_file(
    tmp_path: Path, base_dir: Path, cut: str
) -> None:
    adapter = write_adapter(tmp_path / "a")
    weights = adapter / "adapter_model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:20] if cut == "header" else data[:-8])
    problems = validate_peft_adapter(adapter, base_dir, max_lora_rank=16)
    assert len(problems) == 1, problems
    assert problems[0].startswith("adapter_model.safetensors is not a valid safetensors file: ")


def test_unsupported_modules_and_other_peft_types(tmp_path: Path, base_dir: Path) -> None:
    adapter = write_adapter(tmp_path / "a", targets=("q_proj", "gate_proj"))
    problems = validate_peft_adapter(
        adapter, base_dir, max_lora_rank=16, supported_modules={"q_proj", "v_proj"}
    )
    assert any("['gate_proj']" in p for p in problems), problems
    ia3 = write_adapter(tmp_path / "b", config_extra={"peft_type": "IA3"})
    assert any("only LORA" in p for p in validate_peft_adapter(ia3, base_dir, 16))
    (tmp_path / "empty").mkdir()
    assert validate_peft_adapter(tmp_path / "empty", base_dir, 16) == [
        "adapter_config.json is missing"
    ]


# --- archives --------------------------------------------------------------------------------


def _tar_gz(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in entries:
            info.size = len(data) if data is not None else 0
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes = b"{}") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def test_tar_gz_with_adapter_folder_is_extracted(tmp_path: Path, base_dir: Path) -> None:
    adapter = write_adapter(tmp_path / "src" / "my-adapter")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(adapter, arcname="my-adapter")
    folder = safe_extract_archive(buf.getvalue(), tmp_path / "dest")
    assert folder == tmp_path / "dest" / "my-adapter"
    assert validate_peft_adapter(folder, base_dir, 16) == []


def test_zip_with_adapter_at_root_is_extracted(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("adapter_config.json", "{}")
        zf.writestr("adapter_model.safetensors", b"x")
    assert safe_extract_archive(buf.getvalue(), tmp_path / "d") == tmp_path / "d"


@pytest.mark.parametrize(
    "name", ["../evil/adapter_config.json", "/etc/adapter_config.json", "a/../../x.json"]
)
def test_path_traversal_in_tar_is_refused(tmp_path: Path, name: str) -> None:
    data = _tar_gz([_file("ok/adapter_config.json"), _file(name)])
    dest = tmp_path / "dest"
    with pytest.raises(AdapterArchiveError, match="path"):
        safe_extract_archive(data, dest)
    assert list(dest.iterdir()) == []  # nothing left behind
    assert not (tmp_path / "evil").exists()


def test_path_traversal_in_zip_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("adapter_config.json", "{}")
        zf.writestr("../../outside.txt", "x")
    with pytest.raises(AdapterArchiveError, match="leaves the archive"):
        safe_extract_archive(buf.getvalue(), tmp_path / "dest")
    assert not (tmp_path / "outside.txt").exists()


def test_links_in_tar_are_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("adapter/adapter_model.safetensors")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    data = _tar_gz([_file("adapter/adapter_config.json"), (link, None)])
    with pytest.raises(AdapterArchiveError, match="links"):
        safe_extract_archive(data, tmp_path / "dest")


def test_size_and_count_limits(tmp_path: Path) -> None:
    big = _tar_gz([_file("adapter_config.json"), _file("w.bin", b"\0" * 5000)])
    with pytest.raises(AdapterArchiveError, match="more than 4096 bytes"):
        safe_extract_archive(big, tmp_path / "a", max_total_bytes=4096)
    many = _tar_gz([_file(f"f{i}.json") for i in range(5)])
    with pytest.raises(AdapterArchiveError, match="more than 3 entries"):
        safe_extract_archive(many, tmp_path / "b", max_members=3)


def test_archive_must_hold_exactly_one_adapter(tmp_path: Path) -> None:
    none = _tar_gz([_file("readme.txt", b"hi")])
    with pytest.raises(AdapterArchiveError, match="no adapter_config.json"):
        safe_extract_archive(none, tmp_path / "a")
    two = _tar_gz([_file("x/adapter_config.json"), _file("y/adapter_config.json")])
    with pytest.raises(AdapterArchiveError, match="several adapters"):
        safe_extract_archive(two, tmp_path / "b")
    with pytest.raises(AdapterArchiveError, match=r"\.tar\.gz"):
        safe_extract_archive(b"not an archive at all", tmp_path / "c")
