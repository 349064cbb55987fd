"""production_report.md: the summary and the training-stability rows as Markdown tables.

No generation date or wall times: the report is a DVC out and must be the same bytes for the same runs.
"""
from __future__ import annotations

from typing import Any, Sequence

NA = "n/a"
SUMMARY_METRICS = (("f1", "F1"), ("precision", "Precision"), ("recall", "Recall"), ("accuracy", "Accuracy"),
                   ("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC"), ("mcc", "MCC"))


def _num(value: Any, digits: int = 4) -> str:
    if value is None or value == "":
        return NA
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def _cell(value: Any) -> str:
    # a pipe or newline inside a cell would break the table
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(map(_cell, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def mean_pm_std(entry: dict[str, Any], metric: str) -> str:
    mean, std = entry[f"mean_{metric}"], entry[f"std_{metric}"]
    return NA if mean is None else f"{mean:.4f} ± {std:.4f}"


def render_report(summary: dict[str, Any], stability_rows: Sequence[dict[str, Any]]) -> str:
    models = summary["models"]
    best = summary["best_overall_model"]
    best_line = "**Best model:** none (no model has an ok run)."
    if best:
        n_ok, n_all = models[best]["n_ok"], len(models[best]["runs"])
        best_line = f"**Best model:** `{best}`, mean test F1 {summary['best_overall_f1']:.4f} over {n_ok} of {n_all} seeds."

    per_model = table(
        ["model", "ok / collapsed / missing"] + [label for _, label in SUMMARY_METRICS] + ["best seed (F1)"],
        [
            [name, f"{e['n_ok']} / {e['n_collapsed']} / {e['n_missing']}"]
            + [mean_pm_std(e, key) for key, _ in SUMMARY_METRICS]
            + [NA if e["best_seed"] is None else f"{e['best_seed']} ({e['best_f1']:.4f})"]
            for name, e in models.items()
        ],
    )
    per_run = table(
        ["model", "seed", "status"] + [label for _, label in SUMMARY_METRICS] + ["best epoch", "note"],
        [
            [name, r["seed"], r["status"]]
            + [_num(r["test"][key]) if r["test"] else NA for key, _ in SUMMARY_METRICS]
            + [_num(r["best_epoch"]), r["reason"] or ""]
            for name, e in models.items()
            for r in e["runs"]
        ],
    )
    stability = table(
        ["model", "seed", "status", "final epoch", "best epoch", "grad norm min", "grad norm max",
         "max/min", "grad norm std", "skipped steps", "non-finite loss epochs"],
        [
            [row["model"], row["seed"], row["status"], _num(row["final_epoch"]), _num(row["best_epoch"]),
             _num(row["grad_norm_min"]), _num(row["grad_norm_max"]), _num(row["grad_norm_max_over_min"], 2),
             _num(row["grad_norm_std"]), _num(row["skipped_steps_total"]), _num(row["nonfinite_loss_epochs"])]
            for row in stability_rows
        ],
    )
    return "\n".join([
        "# StreamGuard production report",
        "",
        f"Seeds: {', '.join(map(str, summary['seeds']))}.",
        "",
        best_line,
        "",
        "Means and standard deviations are over ok runs only; std is the sample std (ddof=1), "
        "0 for a single ok run. Collapsed and missing runs are listed below and excluded from the means.",
        "",
        "## Test metrics per model (mean ± std over seeds)",
        "",
        per_model,
        "",
        "## Runs",
        "",
        per_run,
        "",
        "## Training stability",
        "",
        "Gradient norms are before clipping, per epoch; see `training_stability.csv` for all columns. "
        "Wall times differ between identical runs, so they are not reported here: each training run "
        "writes them, with its start and end time, host and git commit, to its `run_log.json`.",
        "",
        stability,
        "",
        "## Figures",
        "",
        "![Test F1 and ROC-AUC per model](metrics_comparison.png)",
        "",
        "![Test F1 per seed](f1_by_seed.png)",
        "",
    ])
