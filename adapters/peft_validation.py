"""Validate a PEFT LoRA adapter against the base model and vLLM's limits before anything loads it.

Only headers are read: adapter_config.json, and the JSON header of each safetensors file (tensor
names, shapes, dtypes), never the weights themselves. `safe_extract_archive` unpacks an uploaded
.tar.gz/.tar/.zip without letting it write outside its folder.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
import zipfile
import zlib
from collections.abc import Collection, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

from safetensors import SafetensorError, safe_open

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
_PICKLE_WEIGHTS = ("adapter_model.bin", "adapter_model.pt")
_FLOAT_DTYPES = {"F32", "F16", "BF16", "F64"}
# init_lora_weights values vLLM accepts: the others (PiSSA, OLoRA, LoftQ, ...) change base weights.
_SUPPORTED_STRING_INITS = {"gaussian", "eva", "orthogonal", "mica", "lora_ga"}
_LORA_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.(?P<ab>lora_[AB])\.weight$")


class AdapterArchiveError(ValueError):
    """The uploaded archive is unsafe or does not contain exactly one adapter folder."""


def adapter_rank(adapter_dir: Path) -> int:
    """The largest LoRA rank an adapter declares (`r` and every `rank_pattern` value)."""
    config = json.loads((Path(adapter_dir) / ADAPTER_CONFIG).read_text())
    ranks = [int(config.get("r") or 0)]
    ranks += [int(v) for v in (config.get("rank_pattern") or {}).values()]
    return max(ranks)


def validate_peft_adapter(
    adapter_dir: Path,
    base_model_dir: Path,
    max_lora_rank: int,
    *,
    supported_modules: Collection[str] | None = None,
) -> list[str]:
    """Every reason the adapter cannot be served on this base model (empty list: it can).

    Checks: adapter_config.json is a LoRA config without modules_to_save, DoRA, bias or another
    feature vLLM refuses; every rank is within `max_lora_rank`; weights are safetensors (pickle
    files are refused); the configured target modules exist in the base model; every lora_A /
    lora_B pair targets an existing 2-D weight of the base model with matching shapes. With
    `supported_modules`, each targeted module's last name must be one of them (vLLM's
    --lora-target-modules, unpacked: q_proj, k_proj, ...).
    """
    adapter_dir, base_model_dir = Path(adapter_dir), Path(base_model_dir)
    config_path = adapter_dir / ADAPTER_CONFIG
    if not config_path.is_file():
        return [f"{ADAPTER_CONFIG} is missing"]
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        return [f"{ADAPTER_CONFIG} is not valid JSON: {exc}"]
    if not isinstance(config, dict):
        return [f"{ADAPTER_CONFIG} must be a JSON object"]

    problems = _config_problems(config, max_lora_rank)
    weights = adapter_dir / ADAPTER_WEIGHTS
    if not weights.is_file():
        pickled = [n for n in _PICKLE_WEIGHTS if (adapter_dir / n).exists()]
        if pickled:
            problems.append(
                f"{pickled[0]} is a pickle file, which can run code when loaded; "
                f"save the adapter as {ADAPTER_WEIGHTS} (safe_serialization=True)"
            )
        else:
            problems.append(f"{ADAPTER_WEIGHTS} is missing")
        return problems
    try:
        adapter_tensors = read_safetensors_header(weights)
    except ValueError as exc:
        return [*problems, f"{ADAPTER_WEIGHTS} is not a valid safetensors file: {exc}"]
    try:
        base_tensors = base_model_tensors(base_model_dir)
    except (OSError, ValueError) as exc:
        return [*problems, f"cannot read the base model's weights: {exc}"]

    problems += _target_module_problems(config, base_tensors)
    problems += _tensor_problems(config, adapter_tensors, base_tensors, max_lora_rank)
    if supported_modules is not None:
        modules = {m.group("module") for k in adapter_tensors if (m := _LORA_KEY.match(k))}
        leaves = sorted({mod.rsplit(".", 1)[-1] for mod in modules} - set(supported_modules))
        if leaves:
            problems.append(
                f"the server cannot apply LoRA to {leaves}; supported modules: "
                f"{sorted(supported_modules)}"
            )
    return problems


def _config_problems(config: dict[str, Any], max_lora_rank: int) -> list[str]:
    problems: list[str] = []
    peft_type = str(config.get("peft_type", "")).upper()
    if peft_type != "LORA":
        problems.append(f"peft_type is {config.get('peft_type')!r}; only LORA adapters are served")
    if config.get("modules_to_save"):
        problems.append(
            f"modules_to_save is set ({config['modules_to_save']}); vLLM cannot serve adapters "
            "that replace whole modules; train without modules_to_save"
        )
    if config.get("use_dora"):
        problems.append("use_dora is true; vLLM does not serve DoRA adapters")
    if config.get("lora_bias") or config.get("bias", "none") not in ("none", None):
        problems.append("the adapter trains biases (bias/lora_bias); vLLM does not support them")
    init = config.get("init_lora_weights", True)
    if isinstance(init, str) and init.lower() not in _SUPPORTED_STRING_INITS:
        problems.append(
            f"init_lora_weights={init!r} changes the base model's weights; convert the adapter "
            "to a plain LoRA first"
        )
    for key, what in (
        ("alora_invocation_tokens", "Activated LoRA"),
        ("layer_replication", "layer_replication"),
        ("use_bdlora", "block-diagonal LoRA"),
        ("use_qalora", "QA-LoRA"),
    ):
        if config.get(key):
            problems.append(f"{key} is set; vLLM does not support {what}")
    ranks: dict[str, Any] = {"r": config.get("r")}
    ranks.update({f"rank_pattern[{k!r}]": v for k, v in (config.get("rank_pattern") or {}).items()})
    for label, value in ranks.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"{label} must be a positive integer, got {value!r}")
        elif value > max_lora_rank:
            problems.append(
                f"LoRA rank {label}={value} is greater than the server's maximum {max_lora_rank}"
            )
    return problems


def _target_module_problems(
    config: dict[str, Any], base_tensors: dict[str, list[int]]
) -> list[str]:
    targets = config.get("target_modules")
    linear_modules = [k[: -len(".weight")] for k, s in base_tensors.items() if _is_matrix(k, s)]
    if targets is None or targets == "all-linear":
        return []
    if isinstance(targets, str):  # peft treats a string as a full-match regex
        try:
            pattern = re.compile(targets)
        except re.error as exc:
            return [f"target_modules is not a valid regular expression: {exc}"]
        if not any(pattern.fullmatch(m) for m in linear_modules):
            return [f"target_modules {targets!r} matches no layer of the base model"]
        return []
    if not isinstance(targets, list):
        return [f"target_modules must be a list of module names, got {type(targets).__name__}"]
    missing = [
        t for t in targets if not any(m == t or m.endswith("." + str(t)) for m in linear_modules)
    ]
    if missing:
        return [f"target modules {missing} do not exist in the base model"]
    return []


def _tensor_problems(
    config: dict[str, Any],
    adapter_tensors: dict[str, dict[str, Any]],
    base_tensors: dict[str, list[int]],
    max_lora_rank: int,
) -> list[str]:
    problems: list[str] = []
    pairs: dict[str, dict[str, list[int]]] = {}
    for key, meta in adapter_tensors.items():
        match = _LORA_KEY.match(key)
        if match is None:
            problems.append(f"tensor {key!r} is not a LoRA weight (lora_A/lora_B) vLLM can load")
            continue
        if meta.get("dtype") not in _FLOAT_DTYPES:
            problems.append(f"tensor {key!r} has dtype {meta.get('dtype')}; expected a float type")
        pairs.setdefault(match.group("module"), {})[match.group("ab")] = list(meta["shape"])
    if not pairs and not problems:
        problems.append(f"{ADAPTER_WEIGHTS} contains no LoRA weights")
    for module, ab in sorted(pairs.items()):
        if set(ab) != {"lora_A", "lora_B"}:
            problems.append(f"module {module} has only {sorted(ab)}; lora_A and lora_B must pair")
            continue
        base_shape = base_tensors.get(f"{module}.weight")
        if base_shape is None:
            problems.append(f"target module {module} does not exist in the base model")
            continue
        if len(base_shape) != 2:
            problems.append(f"target module {module} is not a linear layer (shape {base_shape})")
            continue
        a, b = ab["lora_A"], ab["lora_B"]
        out_features, in_features = base_shape
        if len(a) != 2 or len(b) != 2:
            problems.append(f"module {module}: lora_A {a} and lora_B {b} must be 2-D")
            continue
        rank = a[0]
        if a[1] != in_features or b[0] != out_features or b[1] != rank:
            problems.append(
                f"module {module}: shapes lora_A {a} and lora_B {b} do not fit the base layer "
                f"{base_shape} (expected lora_A [r, {in_features}], lora_B [{out_features}, r])"
            )
        elif rank > max_lora_rank:
            problems.append(
                f"module {module} has rank {rank}, greater than the server's maximum "
                f"{max_lora_rank}"
            )
    return problems


def _is_matrix(key: str, shape: list[int]) -> bool:
    return key.endswith(".weight") and len(shape) == 2


def read_safetensors_header(path: Path) -> dict[str, dict[str, Any]]:
    """Tensor name -> {"dtype", "shape"} from a safetensors file's header (no weights are read);
    ValueError when the file is not valid safetensors."""
    try:
        with safe_open(str(path), framework="numpy") as weights:
            names = weights.keys()
            slices = {name: weights.get_slice(name) for name in names}
            return {
                name: {"dtype": part.get_dtype(), "shape": list(part.get_shape())}
                for name, part in slices.items()
            }
    except SafetensorError as exc:
        raise ValueError(str(exc)) from exc


def base_model_tensors(model_dir: Path) -> dict[str, list[int]]:
    """Weight name -> shape for a Hugging Face safetensors model folder (sharded or not)."""
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise ValueError(f"{model_dir} has no *.safetensors weights")
    shapes: dict[str, list[int]] = {}
    for file in files:
        for name, meta in read_safetensors_header(file).items():
            shapes[name] = list(meta["shape"])
    return shapes


# --- archives ----------------------------------------------------------------------------------

MAX_ARCHIVE_MEMBERS = 256
MAX_EXTRACTED_BYTES = 2 * 1024 * 1024 * 1024


def safe_extract_archive(
    archive_bytes: bytes,
    dest: Path,
    *,
    max_members: int = MAX_ARCHIVE_MEMBERS,
    max_total_bytes: int = MAX_EXTRACTED_BYTES,
) -> Path:
    """Unpack a .tar.gz, .tar or .zip upload into `dest` and return the adapter folder in it.

    Refuses absolute paths, `..` components, links and special files, more than `max_members`
    entries, and more than `max_total_bytes` once unpacked (counted while writing, not taken from
    the archive's headers). The archive must contain exactly one folder with adapter_config.json
    (the archive root or a subfolder). On refusal nothing is left in `dest`.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise AdapterArchiveError(f"destination {dest} is not empty")
    try:
        _extract(archive_bytes, dest, max_members, max_total_bytes)
        configs = sorted(dest.rglob(ADAPTER_CONFIG))
        if not configs:
            raise AdapterArchiveError(f"the archive contains no {ADAPTER_CONFIG}")
        if len(configs) > 1:
            found = [str(c.parent.relative_to(dest)) for c in configs]
            raise AdapterArchiveError(f"the archive contains several adapters: {found}")
        return configs[0].parent
    except BaseException:
        _empty_dir(dest)
        raise


def _extract(data: bytes, dest: Path, max_members: int, max_total_bytes: int) -> None:
    budget = [max_total_bytes]
    if data[:4] == b"PK\x03\x04":
        members = _zip_members(data)
    elif data[:2] == b"\x1f\x8b" or (len(data) > 262 and data[257:262] == b"ustar"):
        members = _tar_members(data)
    else:
        raise AdapterArchiveError("upload an adapter folder as .tar.gz, .tar or .zip")
    try:
        _write_members(members, dest, max_members, budget, max_total_bytes)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
        raise AdapterArchiveError(f"the archive is damaged: {exc}") from exc


def _write_members(
    members: Iterator[_Member], dest: Path, max_members: int, budget: list[int], limit: int
) -> None:
    count = 0
    for name, is_dir, opener in members:
        count += 1
        if count > max_members:
            raise AdapterArchiveError(f"the archive has more than {max_members} entries")
        target = dest.joinpath(*_safe_parts(name))
        if is_dir:
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise AdapterArchiveError(f"the archive contains {name!r} twice")
        with opener() as src, target.open("wb") as out:
            _copy_limited(src, out, budget, limit)


def _safe_parts(name: str) -> tuple[str, ...]:
    if "\\" in name or "\x00" in name:
        raise AdapterArchiveError(f"unsafe path in archive: {name!r}")
    path = PurePosixPath(name)
    if path.is_absolute() or re.match(r"^[A-Za-z]:", name):
        raise AdapterArchiveError(f"absolute path in archive: {name!r}")
    parts = tuple(p for p in path.parts if p not in ("", "."))
    if ".." in parts:
        raise AdapterArchiveError(f"path leaves the archive folder: {name!r}")
    if not parts:
        raise AdapterArchiveError(f"empty path in archive: {name!r}")
    return parts


_Member = tuple[str, bool, Any]


def _zip_members(data: bytes) -> Iterator[_Member]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise AdapterArchiveError(f"not a valid zip archive: {exc}") from exc
    with archive:
        for info in archive.infolist():
            mode = (info.external_attr >> 16) & 0o170000
            if mode and mode not in (0o100000, 0o040000):  # regular file or directory
                raise AdapterArchiveError(f"links and special files are refused: {info.filename!r}")
            yield info.filename, info.is_dir(), (lambda info=info: archive.open(info))


def _tar_members(data: bytes) -> Iterator[_Member]:
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115 (closed below)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise AdapterArchiveError(f"not a valid tar archive: {exc}") from exc
    with archive:
        for info in archive:
            if not (info.isfile() or info.isdir()):
                raise AdapterArchiveError(f"links and special files are refused: {info.name!r}")
            yield info.name, info.isdir(), (lambda info=info: _tar_open(archive, info))


def _tar_open(archive: tarfile.TarFile, info: tarfile.TarInfo) -> IO[bytes]:
    handle = archive.extractfile(info)
    if handle is None:
        raise AdapterArchiveError(f"cannot read {info.name!r} from the archive")
    return handle


def _copy_limited(src: IO[bytes], out: IO[bytes], budget: list[int], limit: int) -> None:
    while chunk := src.read(1 << 20):
        budget[0] -= len(chunk)
        if budget[0] < 0:
            raise AdapterArchiveError(f"the archive unpacks to more than {limit} bytes")
        out.write(chunk)


def _empty_dir(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
