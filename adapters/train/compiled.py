"""torch.compile for the training forward, used where it pays back within the job.

TorchInductor fuses what eager PyTorch runs as separate passes over memory (the dtype casts of
autocast, norms, rotary embeddings, activations, the LoRA scaling): in a profile of a bf16 CPU
step those took more time than the matrix multiplies. Each decoder layer is compiled, not the
whole decoder ("regional" compilation): the layers share their code, so one compiled graph serves
all of them. On a 2-core Xeon (AMX, bf16), SmolLM2-135M, LoRA r=16, batch 8 x 128, steps
alternating in one process: eager / compiled step time 1.59 per layer (1.53 for the whole decoder
compiled as one graph), and the first compiled step took 60 s with an empty cache (about 200 s
for the whole decoder) and 9-15 s with a warm one.

Compiling still costs, so `compile="auto"` times the first eager steps, predicts what the rest of
the run would save, and compiles only when that is at least `PAYBACK_MARGIN` times the compile it
expects. Expected compile times and speedups come from earlier runs of the same shapes on this
machine, kept in a ledger file next to the compiled kernels they describe (the inductor cache
folder, `TORCHINDUCTOR_CACHE_DIR`); without one, the figures above.

The compiled layers have fixed shapes (micro-batches padded to `batch_size` rows of
`max_seq_length` tokens, so one graph serves the whole run) and run only in training forwards;
evaluation and the knowledge check run the eager layers, so they never cause a recompile.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import statistics
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from adapters.train.config import Compile, TrainConfig

log = logging.getLogger(__name__)

# Measured on a 2-core Xeon (AMX, bf16), SmolLM2-135M, LoRA r=16 on all linears, 2026-12-07:
# first compiled step 60 s with an empty inductor cache, 9-15 s with a warm one; 1.59x.
DEFAULT_COLD_SECONDS = 60.0
DEFAULT_WARM_FRACTION = 0.2
DEFAULT_SPEEDUP = 1.5
# Compile only when the predicted saving is at least this multiple of the expected compile time:
# early stopping can end a run well before its planned last step.
PAYBACK_MARGIN = 2.0
# Eager steps timed before "auto" decides (the first pays for allocator and kernel warm-up, so
# it is not counted), and compiled steps timed after the compile to measure the speedup.
EAGER_STEPS = 3
COMPILED_STEPS = 3
LEDGER_NAME = "docadapt-train-compile.json"


def unavailable_reason(device: torch.device) -> str | None:
    """Why this machine cannot compile the step (None when it can): inductor writes C++ kernels
    for the CPU, which need a compiler, and Triton kernels for CUDA."""
    if device.type == "cpu":
        from torch._inductor import config as inductor_config

        compiler = os.environ.get("CXX") or inductor_config.cpp.cxx[-1] or "g++"
        if shutil.which(compiler) is None:
            return f"no C++ compiler ({compiler}) on this machine"
        return None
    if device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            return "Triton is not installed"
        return None
    return f"compiling for {device.type} is not supported"


def shape_key(config: TrainConfig, model_config: dict[str, Any], device: torch.device) -> str:
    """What decides the compiled graph and its cost: the model, the step's shapes and dtype, the
    adapter's shape, the torch build and the device."""
    facts = {
        "torch": torch.__version__,
        "model": model_config,
        "batch_size": config.batch_size,
        "max_seq_length": config.max_seq_length,
        "rank": config.rank,
        "target_modules": sorted(config.target_modules),
        "dropout": config.dropout > 0,
        "precision": config.precision,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class CompileRecord:
    """What compiling one shape cost on this machine, and what it gained."""

    cold_seconds: float | None = None
    warm_seconds: float | None = None
    speedup: float | None = None


class Ledger:
    """Compile records per shape key, in one JSON file in the inductor cache folder. A missing or
    unreadable file is an empty ledger: the records only predict cost, they never decide
    correctness (inductor's own cache keys do that)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def default(cls) -> Ledger:
        from torch._inductor.runtime.cache_dir_utils import cache_dir

        return cls(Path(cache_dir()) / LEDGER_NAME)

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> CompileRecord | None:
        raw = self._read().get(key)
        if not isinstance(raw, dict):
            return None
        try:
            return CompileRecord(**raw)
        except TypeError:
            return None

    def put(self, key: str, record: CompileRecord) -> None:
        """Write `record` for `key` (to a temporary name, then renamed: readers see the old file or
        the new one). A ledger that cannot be written costs only a later prediction."""
        data = self._read()
        data[key] = asdict(record)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                "w", dir=self.path.parent, prefix=".ledger-", delete=False
            ) as tmp:
                json.dump(data, tmp, indent=1, sort_keys=True)
            os.replace(tmp.name, self.path)
        except OSError as exc:
            log.warning("could not record the compile time in %s: %s", self.path, exc)


def expected_cost(record: CompileRecord | None) -> tuple[float, float]:
    """(compile seconds, speedup) to expect: a shape compiled before here is in the cache."""
    if record is None:
        return DEFAULT_COLD_SECONDS, DEFAULT_SPEEDUP
    speedup = record.speedup or DEFAULT_SPEEDUP
    if record.warm_seconds is not None:
        return record.warm_seconds, speedup
    cold = record.cold_seconds if record.cold_seconds is not None else DEFAULT_COLD_SECONDS
    return cold * DEFAULT_WARM_FRACTION, speedup


def pays_back(
    remaining_steps: int, eager_step_seconds: float, record: CompileRecord | None
) -> bool:
    """Whether compiling now saves at least `PAYBACK_MARGIN` times what it is expected to cost
    over the steps left."""
    seconds, speedup = expected_cost(record)
    saving = remaining_steps * eager_step_seconds * (1 - 1 / speedup)
    return speedup > 1 and saving >= PAYBACK_MARGIN * seconds


@dataclass
class CompilePlan:
    """When one run compiles its step, and what it learns about compiling for the ledger.

    `observe` is called with every optimizer step's wall time; it returns True once, at the step
    after which the run should switch to the compiled decoder."""

    mode: Compile
    key: str
    ledger: Ledger | None
    unavailable: str | None = None
    eager: list[float] = field(default_factory=list)
    compiled: list[float] = field(default_factory=list)
    compile_seconds: float | None = None
    switched: bool = False
    done: bool = False

    def without_compile(self, elapsed: float, steps: int) -> tuple[float, int]:
        """This session's wall time and step count with the compile left out, for an ETA: until
        the compiled steps are timed, the whole first compiled step is left out."""
        if self.compile_seconds is None:
            return elapsed, steps
        if len(self.compiled) < COMPILED_STEPS and steps > 1:
            return max(elapsed - self.compile_seconds, 0.0), steps - 1
        return max(elapsed - self.compile_seconds, 0.0), steps

    def compile_pending(self) -> bool:
        """Whether the next step is the one that compiles."""
        return self.switched and self.compile_seconds is None

    def expected_compile_seconds(self) -> float:
        """What the pending compile is expected to take (0 when none is pending)."""
        if not self.compile_pending():
            return 0.0
        return expected_cost(self.ledger.get(self.key) if self.ledger else None)[0]

    def at_start(self) -> bool:
        """Whether to compile before the first step ("on" compiles from the start)."""
        return self.mode == "on" and not self.unavailable and self._switch()

    def observe(self, seconds: float, remaining_steps: int) -> bool:
        if self.done or self.unavailable or (self.mode != "auto" and not self.switched):
            return False
        if self.switched:
            self._after_compile(seconds)
            return False
        self.eager.append(seconds)
        if remaining_steps == 0 or len(self.eager) <= EAGER_STEPS:
            return False
        record = self.ledger.get(self.key) if self.ledger else None
        step = statistics.median(self.eager[1:])
        if pays_back(remaining_steps, step, record):
            log.info(
                "compiling the training step: %d steps left at %.2f s would save at least "
                "%g times the %.0f s the compile is expected to take",
                remaining_steps,
                step,
                PAYBACK_MARGIN,
                expected_cost(record)[0],
            )
            return self._switch()
        self.done = True
        return False

    def _switch(self) -> bool:
        self.switched = True
        return True

    def _after_compile(self, seconds: float) -> None:
        """The first compiled step carries the compile; the next ones give the speedup."""
        if self.compile_seconds is None:
            self.compile_seconds = seconds
            return
        self.compiled.append(seconds)
        if len(self.compiled) < COMPILED_STEPS:
            return
        self.done = True
        step = statistics.median(self.compiled)
        self.compile_seconds = max(0.0, self.compile_seconds - step)
        eager = statistics.median(self.eager[1:]) if len(self.eager) > 1 else None
        if self.ledger is None:
            return
        before = self.ledger.get(self.key)
        record = before or CompileRecord()
        if before is None:
            record.cold_seconds = round(self.compile_seconds, 1)
        else:
            record.warm_seconds = round(self.compile_seconds, 1)
        if eager:
            record.speedup = round(eager / step, 3)
        self.ledger.put(self.key, record)


class CompiledLayers:
    """Calls a decoder with each of its layers torch.compile'd (fixed shapes), leaving the
    decoder itself, and every other caller of it, eager. The compiled layers wrap the same modules,
    so they train the same parameters."""

    def __init__(self, decoder: nn.Module) -> None:
        self.decoder = decoder
        self.eager_layers = decoder.layers
        self.compiled_layers = nn.ModuleList(
            torch.compile(layer, dynamic=False) for layer in decoder.layers
        )

    def __call__(self, **inputs: Any) -> Any:
        self.decoder.layers = self.compiled_layers
        try:
            return self.decoder(**inputs)
        finally:
            self.decoder.layers = self.eager_layers
