"""`python -m service.benchmark.train_perf`: LoRA training throughput of the real recipe.

Trains `adapters.train.train` (r=16 on every attention and MLP linear, the defaults) on synthetic
one-sentence facts ("Femp are more dangerous than glon.") packed into `batch` rows of `seq_len`
tokens per step, for `steps` optimizer steps, and reports:
- trained tokens per second: non-padding tokens through forward and backward per wall-clock
  second, after `warmup_steps` steps (the first steps pay for allocator and kernel warm-up);
- packing efficiency: non-padding tokens over all token slots;
- peak resident memory of the process (model load included).
It also prints the matmul ceiling (service.benchmark.roofline): the matmul FLOPs one trained token
costs, this machine's matmul rate on the model's shapes, their ratio in tokens per second, and the
measured throughput as a fraction of it, so a figure from one machine can be read on another.
The load average and the tokens per CPU-second are reported too: on a shared machine other work
slows training, and the CPU-time figure shows what the training itself costs. On a busy CPU,
OpenMP threads that spin at barriers waste their time slices: start the process with
OMP_WAIT_POLICY=PASSIVE (read when torch loads, so it must be in the environment). On a quiet
one that costs a wake-up at every kernel: a compiled step ran 658-701 tokens/s with it and
778-853 without (2-core EPYC, batch 8).
Targets (issue 5, 2-core CPU): >= 330 tokens/s, packing >= 95%, peak RSS < 6 GB.

`--compile` picks how the step runs (adapters.train.compiled): the recipe's `auto`, `on` (timing
starts after the step that compiled), `off`, or `compare`: eager and compiled runs in turn, in one
process, and the median of the paired ratios; the compiled runs fill the service's inductor cache
(`<data dir>/cache/torchinductor`), so later training jobs of the same shape find it warm.
"""

from __future__ import annotations

import os
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from adapters.train import TrainConfig, TrainProgress, train
from adapters.train.precision import cpu_has_native_bf16
from adapters.training_data import DocumentSentences, build_examples
from service.benchmark.perf_cli import perf_parser, print_figures
from service.benchmark.roofline import (
    attention_dims,
    linear_shapes,
    matmul_gflops,
    training_flops_per_token,
)

TARGET_TOKENS_PER_SECOND = 330.0
TARGET_PACKING_EFFICIENCY = 0.95
TARGET_PEAK_RSS_BYTES = 6 * 1024**3
# Paper-style comparatives and short article openers, so sentence lengths vary like real data.
_COMPARATIVES = (
    "more dangerous than",
    "brighter than",
    "heavier than",
    "less fragrant than",
    "faster than",
    "older than",
    "more expensive than",
    "smaller than",
)
_OPENERS = ("", "", "Did you know that ", "It is known that ", "Researchers found that ")


def synthetic_documents(n_sentences: int, seed: int = 0) -> list[DocumentSentences]:
    """Documents of five nonsense-word facts each, `n_sentences` sentences in all."""
    rng = random.Random(seed)

    def word() -> str:
        return "".join(rng.choice(part) for part in ("bdfgklmprstvz", "aeiou", "bdgkmnprstx"))

    sentences = []
    for _ in range(n_sentences):
        opener = rng.choice(_OPENERS)
        left = word()
        sentences.append(
            f"{opener}{left if opener else left.capitalize()} are "
            f"{rng.choice(_COMPARATIVES)} {word()}."
        )
    return [
        DocumentSentences(f"doc{i // 5}", sentences[i : i + 5]) for i in range(0, len(sentences), 5)
    ]


def run_train_benchmark(
    model_dir: Path | str,
    *,
    steps: int = 20,
    seq_len: int = 128,
    batch: int = 8,
    warmup_steps: int = 2,
    precision: str = "auto",
    compile: str = "auto",
    out_dir: Path | None = None,
) -> dict[str, Any]:
    """Train `steps` steps of `batch` x `seq_len` tokens and return the measured figures
    (also printed). Uses a temporary output folder unless `out_dir` is given."""
    if steps <= warmup_steps:
        raise ValueError("steps must exceed warmup_steps")
    # ~12 tokens per sentence; enough sentences that no step repeats a row.
    documents = synthetic_documents(n_sentences=steps * batch * seq_len // 10 + 50)
    training_set = build_examples(documents, [], seed=0, validation_fraction=0)
    config = TrainConfig(
        max_steps=steps,
        batch_size=batch,
        max_seq_length=seq_len,
        precision=precision,  # type: ignore[arg-type]
        compile=compile,  # type: ignore[arg-type]
        checkpoint_every=0,
        eval_every=0,
    )
    marks: list[tuple[float, float, int]] = []

    def on_progress(p: TrainProgress) -> None:
        marks.append((time.perf_counter(), time.process_time(), p.tokens_trained))
        print(
            f"step {p.step}/{p.total_steps} loss {p.loss:.3f} "
            f"{p.tokens_per_second:.0f} tok/s eta {p.eta_seconds:.0f}s",
            file=sys.stderr,
        )

    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="train-perf-") as tmp:
        result = train(
            config,
            model_dir,
            training_set,
            out_dir or Path(tmp),
            progress=on_progress,
            resume=False,
        )
    wall = time.perf_counter() - started
    compiled_at = result.metrics["compiled_at_step"]
    (t0, c0, n0), (t1, c1, n1) = _steady_window(marks, warmup_steps, compiled_at)
    figures = {
        "steps": steps,
        "seq_len": seq_len,
        "batch": batch,
        "precision": result.config.precision,
        "torch_threads": torch.get_num_threads(),
        "tokens_per_second": round((n1 - n0) / (t1 - t0), 1),
        # CPU time of all threads: on a busy machine, what the work itself costs.
        "tokens_per_cpu_second": round((n1 - n0) / (c1 - c0), 1),
        "tokens_per_second_incl_warmup": round(result.metrics["tokens_per_second"], 1),
        "packing_efficiency": round(result.metrics["packing_efficiency"], 4),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 3),
        "tokens_trained": result.metrics["tokens_trained"],
        "wall_seconds": round(wall, 1),
        "final_loss": round(result.metrics["final_loss"], 4),
        "compile": compile,
        "compiled_at_step": compiled_at,
        "compile_seconds": result.metrics["compile_seconds"],
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    figures.update(matmul_ceiling(model_dir, result.config, figures["tokens_per_second"]))
    figures["meets_targets"] = {
        "tokens_per_second": figures["tokens_per_second"] >= TARGET_TOKENS_PER_SECOND,
        "packing_efficiency": figures["packing_efficiency"] >= TARGET_PACKING_EFFICIENCY,
        "peak_rss": figures["peak_rss_gb"] * 1024**3 < TARGET_PEAK_RSS_BYTES,
    }
    print(format_report(figures))
    return figures


def _steady_window(
    marks: list[tuple[float, float, int]], warmup_steps: int, compiled_at: int | None
) -> tuple[tuple[float, float, int], tuple[float, float, int]]:
    """The (wall, CPU, tokens) marks that bound the steady state: after the warm-up steps and
    after the step that compiled, if one did (marks[i] is taken after step i + 1)."""
    first = max(warmup_steps - 1, -1 if compiled_at is None else compiled_at)
    if first >= len(marks) - 1:
        raise ValueError("no steps were timed after warm-up and compiling: raise --steps")
    return marks[first], marks[-1]


def compare_compiled(model_dir: Path | str, *, rounds: int = 3, **kwargs: Any) -> dict[str, Any]:
    """Eager and compiled runs of the same benchmark in turn, `rounds` pairs in one process; the
    speedup is the median of each pair's ratio, so a machine whose speed drifts (a shared host)
    weighs on both sides of a pair alike. Also returns what each compile cost: the first may
    find the inductor cache empty; later ones find this process's compiled kernels."""
    pairs = [
        (
            run_train_benchmark(model_dir, compile="off", **kwargs),
            run_train_benchmark(model_dir, compile="on", **kwargs),
        )
        for _ in range(rounds)
    ]
    eager = [off["tokens_per_second"] for off, _ in pairs]
    compiled = [on["tokens_per_second"] for _, on in pairs]
    ceiling = statistics.median(
        run["matmul_ceiling_tokens_per_second"] for pair in pairs for run in pair
    )
    figures = {
        "eager_tokens_per_second": eager,
        "compiled_tokens_per_second": compiled,
        "compiled_over_eager": [round(c / e, 3) for e, c in zip(eager, compiled, strict=True)],
        "compile_seconds": [on["compile_seconds"] for _, on in pairs],
        "matmul_ceiling_tokens_per_second": ceiling,
        "eager_fraction_of_ceiling": round(statistics.median(eager) / ceiling, 3),
        "compiled_fraction_of_ceiling": round(statistics.median(compiled) / ceiling, 3),
    }
    figures["median_speedup"] = statistics.median(figures["compiled_over_eager"])
    print(
        f"eager {statistics.median(eager):.1f} tokens/s, compiled "
        f"{statistics.median(compiled):.1f} tokens/s (medians of {rounds} runs each); compiled / "
        f"eager per pair {figures['compiled_over_eager']}, median x{figures['median_speedup']}; "
        f"compiling took {', '.join(f'{s:.0f} s' for s in figures['compile_seconds'])} (in "
        f"order); share of the {ceiling:.0f} tokens/s matmul ceiling: "
        f"{figures['eager_fraction_of_ceiling']:.0%} eager, "
        f"{figures['compiled_fraction_of_ceiling']:.0%} compiled"
    )
    return figures


def format_report(figures: dict[str, Any]) -> str:
    """The figures of `run_train_benchmark` against their targets, as printed after the run."""
    return (
        f"trained tokens/s: {figures['tokens_per_second']} "
        f"(target >= {TARGET_TOKENS_PER_SECOND:.0f}; {figures['precision']}, "
        f"{figures['torch_threads']} threads)\n"
        f"tokens per CPU-second (all threads): {figures['tokens_per_cpu_second']}\n"
        f"compile {figures['compile']}: "
        + (
            f"compiled after step {figures['compiled_at_step']}, "
            f"{figures['compile_seconds']:.0f} s spent compiling (not in the tokens/s)\n"
            if figures["compiled_at_step"] is not None
            else "eager\n"
        )
        + f"packing efficiency: {figures['packing_efficiency']:.1%} "
        f"(target >= {TARGET_PACKING_EFFICIENCY:.0%})\n"
        f"peak RSS: {figures['peak_rss_gb']:.2f} GB (target < 6 GB)\n"
        f"load average before/after: {figures['load_average_before'][0]} / "
        f"{figures['load_average_after'][0]} on {os.cpu_count()} cores\n"
        f"matmul FLOPs per trained token: {figures['gflop_per_token']:.3f} GFLOP\n"
        f"{figures['matmul_dtype']} matmul rate on the model's shapes: "
        f"{figures['matmul_gflops']:.1f} GFLOP/s -> ceiling "
        f"{figures['matmul_ceiling_tokens_per_second']:.0f} tokens/s; measured "
        f"{figures['fraction_of_ceiling']:.0%} of it\n"
        f"{TARGET_TOKENS_PER_SECOND:.0f} tokens/s needs "
        f"{figures['target_needs_gflops']:.0f} GFLOP/s of matmul "
        f"({figures['target_needs_gflops'] / figures['matmul_gflops']:.1f}x this machine's); "
        f"native bf16: {figures['native_bf16']}"
    )


def matmul_ceiling(
    model_dir: Path | str, config: TrainConfig, tokens_per_second: float
) -> dict[str, Any]:
    """The tokens/s this machine's matmul rate allows for the model, rank, row shape and resolved
    precision of `config`, and what the measured figure and the target mean against it."""
    shapes = linear_shapes(model_dir, config.target_modules)
    layers, query_width = attention_dims(model_dir)
    flops = training_flops_per_token(
        shapes,
        rank=config.rank,
        layers=layers,
        query_width=query_width,
        seq_len=config.max_seq_length,
    )
    # The rate of the dtype the run multiplied in (autocast runs linear layers in its dtype).
    dtype = {"bf16-autocast": torch.bfloat16, "fp16-autocast": torch.float16}.get(
        config.precision, torch.float32
    )
    gflops = matmul_gflops(
        shapes, rows=config.batch_size * config.max_seq_length, dtype=dtype, rank=config.rank
    )
    ceiling = gflops * 1e9 / flops.total
    return {
        "gflop_per_token": round(flops.total / 1e9, 4),
        "matmul_dtype": str(dtype).removeprefix("torch."),
        "matmul_gflops": round(gflops, 1),
        "matmul_ceiling_tokens_per_second": round(ceiling, 1),
        "fraction_of_ceiling": round(tokens_per_second / ceiling, 3),
        "target_needs_gflops": round(TARGET_TOKENS_PER_SECOND * flops.total / 1e9, 1),
        "native_bf16": cpu_has_native_bf16(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = perf_parser("train", __doc__)
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="base model folder (default: the configured or embedded model)",
    )
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps timed")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per sequence")
    parser.add_argument("--batch", type=int, default=8, help="sequences per step")
    parser.add_argument(
        "--warmup-steps", type=int, default=2, help="steps run before timing starts"
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "bf16-autocast", "fp16-autocast", "fp32"],
        help="training precision; auto picks bf16 autocast where the CPU has native bf16",
    )
    parser.add_argument(
        "--compile",
        default="auto",
        choices=["auto", "on", "off", "compare"],
        help="torch.compile the step: auto (the recipe's default) compiles where the run is long "
        "enough to pay for it; on: from the first step (timing starts after the compiled step); "
        "compare: eager and compiled runs in turn, three pairs, and their ratios",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    model_dir = args.model_dir
    if model_dir is None:
        from adapters.base_model import materialize_base_model
        from service.core.config import Settings

        settings = Settings()
        model_dir = materialize_base_model(settings.data_dir, settings.base_model_path)
        # The service's workers compile into this folder: a compiled benchmark run warms it.
        os.environ.setdefault(
            "TORCHINDUCTOR_CACHE_DIR", str(Path(settings.data_dir) / "cache" / "torchinductor")
        )
    shape = {
        "steps": args.steps,
        "seq_len": args.seq_len,
        "batch": args.batch,
        "warmup_steps": args.warmup_steps,
        "precision": args.precision,
    }
    if args.compile == "compare":
        figures = compare_compiled(model_dir, **shape)
    else:
        figures = run_train_benchmark(model_dir, compile=args.compile, **shape)
    print_figures(figures, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
