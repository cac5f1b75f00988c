"""The training recipe end to end on the real embedded model, on the CPU: a few steps on a tiny
collection lower the loss and save an adapter vLLM can serve; a crashed run resumes from its last
checkpoint, a stopped one from the stop, and the resumed run ends exactly where an uninterrupted
one does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from adapters.peft_validation import validate_peft_adapter
from adapters.train import TrainConfig, TrainingCancelled, TrainProgress, TrainResult, train
from adapters.training_data import (
    DocumentSentences,
    TrainingSet,
    build_examples,
    save_training_set,
)

pytestmark = pytest.mark.e2e

DOCUMENTS = [
    DocumentSentences(
        "d1",
        [
            "Femp are more dangerous than glon.",
            "Glon are brighter than yomp.",
            "All troff are yomp.",
            "Kreb can zarp quickly.",
        ],
    ),
    DocumentSentences(
        "d2",
        [
            "Dax are a type of fep.",
            "Quom live under blue stones.",
            "Morv is heavier than jolp.",
            "Zimble is a tool for data analysis.",
        ],
    ),
]
AUGMENTED = [
    "Glon are less dangerous than femp.",
    "Yomp are dimmer than glon.",
    "Jolp is lighter than morv.",
    "Fep include dax.",
]
# One packed row per step keeps this fast; a high learning rate makes 8 steps show learning.
CONFIG = TrainConfig(
    max_steps=8,
    epochs=1000,  # max_steps is the bound here
    early_stopping=False,
    batch_size=1,
    max_seq_length=128,
    learning_rate=2e-3,
    checkpoint_every=2,
    eval_every=4,
)


class Crash(Exception):
    """Stands in for a worker killed mid-run."""


@pytest.fixture(scope="module")
def training_set() -> TrainingSet:
    result = build_examples(DOCUMENTS, AUGMENTED, seed=0)
    assert len(result.validation) == 1
    return result


@pytest.fixture(scope="module")
def uninterrupted(
    base_model_dir: Path, training_set: TrainingSet, tmp_path_factory: pytest.TempPathFactory
) -> TrainResult:
    out = tmp_path_factory.mktemp("train-once")
    seen: list[TrainProgress] = []
    result = train(CONFIG, base_model_dir, training_set, out, progress=seen.append)
    assert [p.step for p in seen] == list(range(1, 9))
    assert all(p.total_steps == 8 and p.tokens_per_second > 0 for p in seen)
    assert seen[-1].eta_seconds == 0
    # The last progress report already carries the final held-out loss (what a job shows at 100%).
    assert seen[-1].held_out_loss == pytest.approx(result.metrics["held_out_loss"])
    return result


def test_training_lowers_the_loss(uninterrupted: TrainResult) -> None:
    metrics = uninterrupted.metrics
    losses = [loss for _, loss in metrics["loss_curve"]]
    assert len(losses) == 8
    assert losses[-1] < 0.7 * losses[0]
    assert metrics["held_out_loss"] < metrics["initial_held_out_loss"]
    assert metrics["tokens_trained"] > 0
    assert 0.5 < metrics["packing_efficiency"] <= 1.0


def test_outputs_are_a_servable_adapter_with_its_config_and_metrics(
    uninterrupted: TrainResult, base_model_dir: Path
) -> None:
    adapter = uninterrupted.adapter_dir
    out = adapter.parent
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert not config.get("modules_to_save")
    assert not config.get("use_dora")
    assert config["r"] <= 16
    assert set(config["target_modules"]) == set(CONFIG.target_modules)
    assert validate_peft_adapter(adapter, base_model_dir, max_lora_rank=16) == []
    saved = json.loads((out / "train_config.json").read_text())
    assert saved["precision"] in ("fp32", "bf16-autocast")  # "auto" resolved
    assert TrainConfig.from_dict(saved).learning_rate == CONFIG.learning_rate
    assert json.loads((out / "metrics.json").read_text()) == uninterrupted.metrics
    assert (out / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert not (out / "checkpoints").exists()


def test_a_crashed_then_stopped_run_resumes_and_ends_like_an_uninterrupted_one(
    base_model_dir: Path, training_set: TrainingSet, uninterrupted: TrainResult, tmp_path: Path
) -> None:
    def crash_at_5(p: TrainProgress) -> None:
        if p.step == 5:
            raise Crash

    with pytest.raises(Crash):
        train(CONFIG, base_model_dir, training_set, tmp_path, progress=crash_at_5)
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("*.pt")) == [
        "step-00000002.pt",
        "step-00000004.pt",
    ]

    # Resumes from the step-4 checkpoint; asked to stop after step 5, it checkpoints step 5.
    seen: list[int] = []
    with pytest.raises(TrainingCancelled) as stopped:
        train(
            CONFIG,
            base_model_dir,
            training_set,
            tmp_path,
            progress=lambda p: seen.append(p.step),
            should_stop=lambda: bool(seen),
        )
    assert seen == [5]
    assert stopped.value.step == 5
    assert stopped.value.checkpoint == tmp_path / "checkpoints" / "step-00000005.pt"

    # Other hyperparameters do not silently continue someone else's run.
    with pytest.raises(ValueError, match="learning_rate"):
        changed = TrainConfig(**{**CONFIG.__dict__, "learning_rate": 1e-3})
        train(changed, base_model_dir, training_set, tmp_path)

    seen.clear()
    result = train(
        CONFIG, base_model_dir, training_set, tmp_path, progress=lambda p: seen.append(p.step)
    )
    assert seen == [6, 7, 8]
    expected = uninterrupted.metrics
    assert [s for s, _ in result.metrics["loss_curve"]] == list(range(1, 9))
    assert [v for _, v in result.metrics["loss_curve"]] == pytest.approx(
        [v for _, v in expected["loss_curve"]], rel=1e-4
    )
    assert result.metrics["held_out_loss"] == pytest.approx(expected["held_out_loss"], rel=1e-4)


def test_probe_scores_equal_the_log_likelihood_of_each_sequence_alone(base_model_dir: Path) -> None:
    """Batched, padded and with the output head only where a score is read, each choice's score
    is its summed log-probability computed from the whole sequence alone."""
    from contextlib import nullcontext

    import torch
    from transformers import AutoModelForCausalLM

    from adapters.base_model import load_tokenizer
    from adapters.knowledge import KnowledgeProbe, choice_loglikelihoods, probe_accuracy

    tokenizer = load_tokenizer(base_model_dir)
    model = AutoModelForCausalLM.from_pretrained(str(base_model_dir), dtype=torch.float32).eval()
    capital = KnowledgeProbe.from_text(
        tokenizer, "The capital of France is", ["Berlin.", "Paris.", "a dog."], 1
    )
    wrong = KnowledgeProbe.from_text(tokenizer, "The capital of France is", ["Paris.", "a dog."], 1)
    sequences = [(p.prompt_ids, c) for p in (capital, wrong) for c in p.choice_ids]
    cpu = torch.device("cpu")
    batched = choice_loglikelihoods(model, sequences, 0, cpu, nullcontext)
    with torch.no_grad():
        alone = []
        for prompt, cont in sequences:
            logits = model(input_ids=torch.tensor([prompt + cont])).logits[0]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            alone.append(sum(float(logprobs[len(prompt) - 1 + k, t]) for k, t in enumerate(cont)))
    assert batched == pytest.approx(alone, abs=1e-3)
    assert probe_accuracy(model, [capital], pad_id=0, device=cpu, autocast=nullcontext) == 1.0
    assert (
        probe_accuracy(model, [capital, wrong], pad_id=0, device=cpu, autocast=nullcontext) == 0.5
    )


def test_the_knowledge_check_rises_and_ends_the_run_at_its_plateau(
    base_model_dir: Path, training_set: TrainingSet, tmp_path: Path
) -> None:
    """Probes of the training sentences, scored inside the loop: the base model misses most, the
    trained one gets them all, and early stopping ends the run well before its upper bound."""
    from adapters.base_model import load_tokenizer
    from adapters.knowledge import KnowledgeProbe

    tokenizer = load_tokenizer(base_model_dir)
    animals = ["glon.", "yomp.", "jolp.", "fep."]
    probes = [
        KnowledgeProbe.from_text(tokenizer, "Femp are more dangerous than", animals, 0),
        KnowledgeProbe.from_text(tokenizer, "Glon are brighter than", animals, 1),
        KnowledgeProbe.from_text(tokenizer, "Morv is heavier than", animals, 2),
        KnowledgeProbe.from_text(tokenizer, "Dax are a type of", animals, 3),
    ]
    config = TrainConfig(
        epochs=200, batch_size=1, learning_rate=2e-3, eval_every=2, patience=3, checkpoint_every=0
    )
    seen: list[TrainProgress] = []
    result = train(
        config, base_model_dir, training_set, tmp_path, probes=probes, progress=seen.append
    )
    metrics = result.metrics
    curve = metrics["knowledge_curve"]
    assert curve[0][0] == 0 and curve[0][1] < 1.0  # the base model does not know them
    assert curve[-1][1] == 1.0
    assert metrics["stopped_early_at"] == metrics["steps"] < metrics["planned_steps"] == 200
    # It stopped at the first evaluation that found every probe right.
    assert [step for step, value in curve if value == 1.0] == [metrics["steps"]]
    assert seen[-1].knowledge == 1.0 and seen[-1].step == metrics["steps"]


def test_torchrun_trains_one_adapter_data_parallel_on_two_processes(
    base_model_dir: Path, training_set: TrainingSet, tmp_path: Path
) -> None:
    """The command line deploy/README.md documents for several GPUs, run here with two CPU
    processes (gloo): both ranks step together and rank 0 saves one servable adapter."""
    save_training_set(training_set, tmp_path / "data.json")
    config = {"max_steps": 2, "batch_size": 1, "max_seq_length": 128, "checkpoint_every": 0}
    (tmp_path / "config.json").write_text(json.dumps(config))
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
        "-m", "adapters.train", "--model-dir", str(base_model_dir),
        "--data", str(tmp_path / "data.json"), "--config", str(tmp_path / "config.json"),
        "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one core per rank on the 2-core machine
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["world_size"], metrics["device"], metrics["steps"]) == (2, "cpu", 2)
    assert validate_peft_adapter(out / "adapter", base_model_dir, max_lora_rank=16) == []


def _one_step_gradients(
    base_model_dir: Path, precision: str, *, keep_fp32_weights: bool, attention: str | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The summed loss and LoRA gradients of one step of the recipe's model and loss on two
    packed rows, built as the recipe builds them (or with its frozen weights left fp32 or its
    attention implementation overridden, to compare)."""
    import adapters.train.recipe as recipe
    from adapters.train.distributed import Distributed
    from adapters.train.packing import collate, pack_examples
    from adapters.train.precision import autocast_for

    device = torch.device("cpu")
    torch.manual_seed(0)
    with pytest.MonkeyPatch.context() as patch:
        if keep_fp32_weights:
            patch.setattr(recipe, "store_frozen_weights_for", lambda *_: None)
        if attention is not None:
            patch.setattr(recipe, "attention_for", lambda *_: attention)
        model, loss_module = recipe._load_model(
            CONFIG, base_model_dir, Distributed(0, 1, device), precision
        )
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_model_dir), local_files_only=True)
    examples = build_examples(DOCUMENTS, AUGMENTED, seed=0).examples
    rows = pack_examples(tokenizer, examples, max_seq_length=64)[:2]
    assert any(0 in row.positions[1:] for row in rows)  # several examples share a row
    with autocast_for(precision, device)():
        loss, _ = loss_module(**collate(rows, tokenizer.eos_token_id, device))
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    return loss.detach(), grads


def test_frozen_weights_kept_in_bf16_train_exactly_as_autocast_would(base_model_dir: Path) -> None:
    """Under bf16 autocast the recipe stores the frozen linear weights in bf16, which autocast
    would round them to on every forward anyway: the step's loss and every LoRA gradient are the
    same, bit for bit, as with the weights kept fp32."""
    loss, grads = _one_step_gradients(base_model_dir, "bf16-autocast", keep_fp32_weights=False)
    loss32, grads32 = _one_step_gradients(base_model_dir, "bf16-autocast", keep_fp32_weights=True)
    assert torch.equal(loss, loss32)
    assert grads.keys() == grads32.keys() and len(grads) > 0
    assert all(torch.equal(grads[name], grads32[name]) for name in grads)


def test_eager_attention_trains_packed_rows_like_sdpa(base_model_dir: Path) -> None:
    """The CPU bf16 recipe uses transformers' eager attention (faster there); on packed rows
    (several examples per row, kept apart by restarting position ids) it computes the same loss
    and gradients as SDPA, to fp32 rounding."""
    loss, grads = _one_step_gradients(
        base_model_dir, "fp32", keep_fp32_weights=True, attention="eager"
    )
    loss_sdpa, grads_sdpa = _one_step_gradients(
        base_model_dir, "fp32", keep_fp32_weights=True, attention="sdpa"
    )
    assert loss.item() == pytest.approx(loss_sdpa.item(), rel=1e-5)
    # Per tensor, the difference's norm against the gradient's (element-wise, summation order
    # leaves single entries near zero a few 1e-5 apart).
    for name, grad in grads.items():
        assert (grad - grads_sdpa[name]).norm() <= 1e-4 * grads_sdpa[name].norm(), name


@pytest.fixture(scope="module")
def one_layer_model_dir(base_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded model cut to its first decoder layer (its own weights): the compiled
    path is the same code, and compiling it takes seconds instead of minutes."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("one-layer")
    model = AutoModelForCausalLM.from_pretrained(
        str(base_model_dir), num_hidden_layers=1, local_files_only=True
    )
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(str(base_model_dir), local_files_only=True).save_pretrained(out)
    return out


def test_a_compiled_run_trains_like_an_eager_one_and_records_its_compile(
    one_layer_model_dir: Path,
    training_set: TrainingSet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """compile="on" runs every step through a torch.compile'd decoder (fixed-shape micro-batches;
    evaluation stays eager): the loss curve follows the eager run's within what fused kernels
    change in rounding, the adapter is saved, and the compile's cost lands in the metrics and in
    the ledger next to the inductor cache (a fresh, empty one here: a cold compile)."""
    from adapters.train.compiled import LEDGER_NAME, CompileRecord, Ledger

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    config = {
        **CONFIG.__dict__,
        "checkpoint_every": 0,
        "target_modules": list(CONFIG.target_modules),
    }
    eager = train(
        TrainConfig(**{**config, "compile": "off"}),
        one_layer_model_dir,
        training_set,
        tmp_path / "eager",
    )
    seen: list[TrainProgress] = []
    compiled = train(
        TrainConfig(**{**config, "compile": "on"}),
        one_layer_model_dir,
        training_set,
        tmp_path / "compiled",
        progress=seen.append,
    )
    assert eager.metrics["compiled_at_step"] is None and eager.metrics["compile_seconds"] == 0
    assert compiled.metrics["compiled_at_step"] == 0
    assert compiled.metrics["compile_seconds"] > 0
    eager_losses = [loss for _, loss in eager.metrics["loss_curve"]]
    compiled_losses = [loss for _, loss in compiled.metrics["loss_curve"]]
    assert len(compiled_losses) == 8 and compiled_losses[-1] < 0.7 * compiled_losses[0]
    assert compiled_losses == pytest.approx(eager_losses, rel=0.03)
    assert compiled.metrics["held_out_loss"] == pytest.approx(
        eager.metrics["held_out_loss"], rel=0.03
    )
    assert validate_peft_adapter(compiled.adapter_dir, one_layer_model_dir, max_lora_rank=16) == []
    # Every micro-batch was padded to the full shape, and the efficiency says so.
    assert compiled.metrics["packing_efficiency"] < eager.metrics["packing_efficiency"]
    records = json.loads((tmp_path / "inductor" / LEDGER_NAME).read_text())
    assert len(records) == 1
    (record,) = (Ledger(tmp_path / "inductor" / LEDGER_NAME).get(k) for k in records)
    assert isinstance(record, CompileRecord)
    assert record.cold_seconds == pytest.approx(compiled.metrics["compile_seconds"], abs=0.1)
    assert record.warm_seconds is None
    # The ETA leaves the compile out once it is measured.
    assert all(p.eta_seconds < compiled.metrics["compile_seconds"] for p in seen[4:])
