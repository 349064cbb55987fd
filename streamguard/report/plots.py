"""Figures of the production summary, drawn from the summary dict alone.

Uses matplotlib's Agg canvas directly (no pyplot): no GUI backend, no global figure state,
safe in stages and tests. PNGs are rendered in memory, then written atomically. The same summary
gives the same bytes: Agg writes no date, and the Software tag is left out so a matplotlib upgrade
that draws the same pixels does not change the file either.
"""
from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..io import atomic_write

DPI = 120


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, path: str | os.PathLike) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    with atomic_write(path, "wb") as fh:
        fh.write(buf.getbuffer())


def _ok_values(entry: dict[str, Any], metric: str) -> list[float]:
    return [r["test"][metric] for r in entry["runs"] if r["status"] == "ok" and r["test"][metric] is not None]


def _baseline_values(summary: dict[str, Any]) -> tuple[str, dict[str, float | None]] | None:
    """(name, test metrics) of the baseline run when the summary has one with test metrics."""
    base = summary.get("baseline")
    if not base or not base.get("test"):
        return None
    return base["model"], base["test"]


def plot_metrics_comparison(summary: dict[str, Any], path: str | os.PathLike) -> None:
    """Box plots per model of test F1 and ROC-AUC over the ok seeds, each seed drawn as a point; the
    baseline (one run) as a hatched bar after the models, with a dashed line across for reference."""
    models = list(summary["models"])
    baseline = _baseline_values(summary)
    fig = _new_figure(4.0 + 1.6 * (len(models) + (baseline is not None)), 4.2)
    for ax, metric, title in zip(fig.subplots(1, 2), ("f1", "roc_auc"), ("Test F1", "Test ROC-AUC")):
        values = [_ok_values(summary["models"][m], metric) for m in models]
        labels = [f"{m}\n(n={len(v)})" for m, v in zip(models, values)]
        ax.boxplot(values, tick_labels=labels, widths=0.5)
        for pos, vals in enumerate(values, start=1):
            # fixed horizontal spread so coincident seeds stay visible; deterministic output
            offsets = np.linspace(-0.08, 0.08, len(vals)) if len(vals) > 1 else np.zeros(len(vals))
            ax.scatter(pos + offsets, vals, s=18, zorder=3, alpha=0.8, color=f"C{pos - 1}")
        if baseline is not None:
            name, test = baseline
            pos = len(models) + 1
            value = test.get(metric)
            if value is not None:
                ax.bar(pos, value, width=0.5, color="0.85", edgecolor="0.3", hatch="//", zorder=2)
                ax.axhline(value, color="0.3", linestyle="--", linewidth=1, zorder=1)
            ax.set_xticks(range(1, pos + 1), labels + [f"{name}\n(baseline)"])
            ax.set_xlim(0.4, pos + 0.6)
        ax.set_title(title + " over seeds (ok runs)")
        ax.set_ylim(0.0, 1.0)
        ax.grid(axis="y", alpha=0.3)
    save_png(fig, path)


def plot_f1_by_seed(summary: dict[str, Any], path: str | os.PathLike) -> None:
    """One line per model: test F1 at each seed; collapsed/missing seeds are gaps marked x on the axis."""
    seeds = summary["seeds"]
    x = np.arange(len(seeds))
    fig = _new_figure(6.5, 4.2)
    ax = fig.subplots()
    for i, (name, entry) in enumerate(summary["models"].items()):
        by_seed = {r["seed"]: r for r in entry["runs"]}
        y = np.array([
            by_seed[s]["test"]["f1"] if s in by_seed and by_seed[s]["status"] == "ok" else np.nan
            for s in seeds
        ], dtype=float)
        ax.plot(x, y, marker="o", label=name, color=f"C{i}")
        bad = [i for i, s in enumerate(seeds) if s not in by_seed or by_seed[s]["status"] != "ok"]
        if bad:
            ax.scatter(x[bad], np.zeros(len(bad)), marker="x", s=60, color=f"C{i}", zorder=3, clip_on=False,
                       label=f"{name}: not ok ({', '.join(str(seeds[i]) for i in bad)})")
    ax.set_xticks(x, [str(s) for s in seeds])
    ax.set_xlabel("seed")
    ax.set_ylabel("test F1")
    ax.set_ylim(0.0, 1.0)
    ax.set_xlim(-0.3, len(seeds) - 0.7)
    ax.set_title("Test F1 per seed (x: collapsed or missing, excluded from means)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    save_png(fig, path)
