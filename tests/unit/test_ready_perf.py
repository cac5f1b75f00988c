"""`docadapt perf ready`'s report table, from figures shaped as the run records them."""

from service.benchmark.ready_perf import format_report


def test_report_shows_both_adapters_and_the_augmentation() -> None:
    adapter = {
        "training_examples": 95,
        "steps": 25,
        "tokens_per_second": 80.4,
        "job_seconds": 71.2,
        "train_to_ready_seconds": 73.0,
        "planned_steps": 100,
        "knowledge_adapter": 0.925,
        "knowledge_base": 0.475,
        "knowledge_probes": 40,
    }
    figures = {
        "documents": 20,
        "sentences": 99,
        "augmentation": {
            "strategies": ["decomposed", "local"],
            "wall_seconds": 173.6,
            "examples": 194,
        },
        "plain": adapter,
        "augmented": {**adapter, "training_examples": 279, "train_to_ready_seconds": 163.3},
    }
    lines = format_report(figures).splitlines()
    assert lines[0].startswith(
        "collection: 20 documents, 99 sentences; augmentation (decomposed, local): 194"
    )
    plain, augmented = lines[-3].split(), lines[-2].split()
    assert plain == ["plain", "95", "25/100", "92%", "48%", "80.4", "71.2", "73.0"]
    assert augmented[0] == "augmented" and augmented[1] == "279" and augmented[-1] == "163.3"
    assert lines[-1] == "knowledge check: 40 probes per adapter"
