"""The files of a bench run: bench.json (everything), bench.md (the tables), bench.png (the
plot)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from service.benchmark.bench.formatting import seeds_note
from service.benchmark.bench.markdown import markdown


def plot_png(result: dict[str, Any], path: Path) -> None:
    """Grouped bars: one group per row, one bar per column, whiskers from the 95% interval (one
    run) or the min-max over seeds, chance marked per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, columns = result["rows"], result["columns"]
    width = 0.8 / len(columns)
    fig, ax = plt.subplots(figsize=(min(18.0, max(8.0, 0.25 * len(rows) * len(columns))), 4.8))
    colors = plt.get_cmap("tab10")
    for j, column in enumerate(columns):
        xs, ys, lo, hi = [], [], [], []
        for i, row in enumerate(rows):
            value = result["table"][row][column]
            if not value or not value["n"] or value["accuracy"] is None:
                continue
            low, high = (
                (value["min"], value["max"])
                if "per_seed" in value
                else (value["ci_low"], value["ci_high"])
            )
            xs.append(i - 0.4 + width * (j + 0.5))
            ys.append(100 * value["accuracy"])
            lo.append(100 * (value["accuracy"] - low))
            hi.append(100 * (high - value["accuracy"]))
        ax.bar(
            xs,
            ys,
            width,
            yerr=[lo, hi],
            capsize=2,
            color=colors(j % 10),
            label=result["column_labels"][column],
            error_kw={"elinewidth": 0.8},
        )
    for i, row in enumerate(rows):
        chance = result["chance"][row]
        ax.hlines(
            100 * chance,
            i - 0.45,
            i + 0.45,
            colors="black",
            linestyles="dashed",
            linewidth=0.8,
            label="chance" if i == 0 else None,
        )
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r.replace("/", "\n") for r in rows], fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("accuracy (%)")
    o = result["options"]
    whiskers = "min-max over seeds" if o.get("seeds", 1) > 1 else "95% Wilson intervals"
    ax.set_title(
        f"docadapt bench, size {o['size']}, seed {o['seed']}, {seeds_note(o)} ({whiskers})"
    )
    ax.legend(fontsize=7, ncol=6, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(result: dict[str, Any], out_dir: Path) -> None:
    """bench.json (everything), bench.md (the tables) and bench.png (the plot) in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.json").write_text(
        json.dumps(result, indent=1, ensure_ascii=False, default=str), encoding="utf-8"
    )
    (out_dir / "bench.md").write_text(markdown(result), encoding="utf-8")
    plot_png(result, out_dir / "bench.png")
