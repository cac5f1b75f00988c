"""`docadapt bench`: the controlled generalization benchmark of Lampinen et al. (2025), run against
a live docadapt service through its REST API only, exactly as a user would drive it.

    from service.benchmark.bench import BenchOptions, run_bench
    with httpx.Client(base_url="http://127.0.0.1:8000", timeout=120) as client:
        result = run_bench(client, BenchOptions(size="small", out_dir=Path("bench")),
                           admin_key="...")

Where it lives: `options.py` (columns, size presets, BenchOptions), `run.py` (the driver over
`service.client`), `tables.py` (cells, paired tests, checks, recomputed from per-item results),
`result.py` (bench.json's content), `markdown.py`, `outputs.py` (bench.md, bench.png) and
`terminal.py` (`docadapt bench`: progress and rich tables).

One run: the size's datasets of the generated suite go into ONE collection and one eval set
(items categorised "<dataset>/<split>"); augmentations per column; adapters with identical
hyperparameters: plain fine-tuning (FT, documents only) and one per augmentation set, each
trained `seeds` times (training seeds 0..N-1, same data); one evaluation scores base, ICL and
every adapter. Columns:
- base, ICL (the documents in the prompt), FT;
- teacher-written, by the teacher model (the embedded 135M unless configured): local (each
  sentence on its own), global (each document against the whole collection), both (the union of
  the local and global sets, the examples a job with strategies local+global keeps, without
  paying the teacher twice);
- rule-made, no teacher: decomposed (each sentence's parse rewritten: reversals, voice
  changes), linked (syllogisms and inheritance across sentences), default (one augmentation job
  with the service's default strategies, decomposed + linked);
- oracle: the generator's own true inferences (the reversals and syllogism conclusions the test
  items need), uploaded as an augmentation set: the method with a perfect teacher.
Adapters train on every example their augmentation kept ("not_rejected": nobody reviews them
here; free-form teacher outputs are flagged and would otherwise be left out).

Training to the plateau: every adapter trains with early stopping on the knowledge check
(probes from the collection's own sentences, `adapters/knowledge.py`), `epochs` and `max_steps`
only as caps; the table of training says per column how many steps it took, whether it stopped
early, its training time and its knowledge check (adapter and base) after training.

Out come: the accuracy table (rows: dataset/split, then "all/<split>" pooled over datasets where
a split has several, then "all"; cells "acc% [95% Wilson interval]", or with several seeds "mean%
(min-max)"); paired tests, the exact McNemar test of every augmented column (and FT) against FT
and against ICL per row, on the items both scored (`service.evaluate.stats.paired_test`; with
several seeds one test per seed, each seed's adapter against the same seed's FT, and the table
shows the largest p); the training table; the teacher's quality against the generator's truth
(precision, contradiction rate, recall per strategy); and the files bench.json (everything, every
item's result per mode, so each cell and p-value can be recomputed), bench.md (the tables) and
bench.png (grouped bars with interval whiskers).

What "small" runs (a 2-core CPU, 30 minutes): simple reversals and syllogisms only (44 facts in 6
short documents, 42 syllogism examples in 7; 44 forward + 44 reversal, 42 forward + 42 syllogism
items) and the columns base, ICL, FT, default and oracle: three adapters trained to the plateau
are what the budget holds. decomposed and linked alone (default's two halves: decomposed makes
the reversals, linked the syllogism conclusions) add an adapter each; the teacher columns add
the 135M teacher's augmentation (minutes of generation) and an adapter trained on its mostly
unusable output (7% of its statements were true in the last measured run), so they are left
out too. `--strategies decomposed,linked,local,...` adds any of them; "medium" and "large" (GPU
hosts) run every column on all three datasets.

Jobs run in the order they are created (one worker runs them one at a time), so the driver
creates every augmentation first, then the adapters that need none, then each augmented
adapter as soon as its augmentation succeeds, and the evaluation once every adapter is ready.
A failed augmentation or training drops its column (reported, never hidden); the rest goes on.
"""

from __future__ import annotations

from service.benchmark.bench.options import AUGMENTED, COLUMNS, PRESETS, BenchOptions
from service.benchmark.bench.run import BenchRun, run_bench
from service.benchmark.live_service import BenchError

__all__ = [
    "AUGMENTED",
    "COLUMNS",
    "PRESETS",
    "BenchError",
    "BenchOptions",
    "BenchRun",
    "run_bench",
]
