"""production_report.md: the summary and the training-stability rows as Markdown tables.

No generation date or wall times: the report is a DVC out and must be the same bytes for the same runs.
"""
from __future__ import annotations

from typing import Any, Sequence

from .compare import baseline_label
from .stats import format_p

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


def _signed(value: Any) -> str:
    return NA if value is None else f"{value:+.3f}"


def _diff_cell(vs: dict[str, Any] | None) -> str:
    if vs is None or vs["diff"] is None:
        return NA
    return f"{_signed(vs['diff'])} [{_signed(vs['ci_low'])}, {_signed(vs['ci_high'])}]"


def _p_cell(vs: dict[str, Any] | None) -> str:
    if vs is None or vs["p_value"] is None:
        return NA
    return format_p(vs["p_value"], 2 / vs["n_boot"])


def _mcnemar_cell(vs: dict[str, Any] | None) -> str:
    if vs is None:
        return NA
    return ", ".join(f"{m['seed']}: {format_p(m['p_value'])}" for m in vs["mcnemar"])


def _realistic_cells(realistic: dict[str, Any] | None) -> list[str]:
    r = realistic or {}
    return [_num(r.get(k)) for k in ("vd_s", "precision_at_1pct", "flagged_fraction", "pair_accuracy")]


def render_comparison(summary: dict[str, Any]) -> str:
    """The "Against the baseline" section: one table row per model and the baseline, one sentence per model."""
    settings = summary["statistics"]["comparison"]
    comparisons = summary["comparisons"]
    baseline = summary.get("baseline")
    base_name = baseline["model"] if baseline else None
    base_label = baseline_label(base_name) if base_name else "the baseline"
    level = 100 * (1 - settings["alpha"])
    lines = ["## Against the baseline", ""]
    if baseline is None:
        lines += ["No baseline run was given: realistic metrics only, no comparison.", ""]
    elif not baseline["available"]:
        lines += [f"No comparison with the baseline `{base_name}`: {baseline['reason']}.", ""]
    rows = []
    if baseline is not None:
        base_realistic = baseline["realistic"] or {}
        rows.append([f"{base_name} (baseline)", _num(base_realistic.get("roc_auc")), "—", "—", "—"]
                    + _realistic_cells(baseline["realistic"]))
    for name, entry in comparisons.items():
        vs = entry["vs_baseline"]
        rows.append([name, _num(entry["realistic"]["roc_auc"]), _diff_cell(vs), _p_cell(vs), _mcnemar_cell(vs)]
                    + _realistic_cells(entry["realistic"]))
    lines += [table(["model", "mean ROC-AUC", f"diff vs {base_label} [{level:g} % CI]", "p", "McNemar p per seed",
                     "VD-S", "P@1 %", "flagged", "pair accuracy"], rows), ""]
    notes = [f"- {entry['vs_baseline']['verdict']}" if entry["vs_baseline"]
             else f"- {name}: not compared (no run with usable test predictions)."
             for name, entry in comparisons.items() if baseline is not None and baseline["available"]]
    if notes:
        lines += notes + [""]
    missing = [f"- `{name}` seed {r['seed']}: {r['reason']}" for name, entry in comparisons.items()
               for r in entry["runs"] if not r["available"]]
    if missing:
        lines += ["Runs without usable test predictions, left out of this section:", ""] + missing + [""]
    pairs = settings["pairs"]
    pair_text = (f"pair accuracy is the share of the {pairs['n_pairs']} vulnerable/safe pairs "
                 f"(by `{pairs['source']}`) with both functions right" if pairs
                 else "the test split has no vulnerable/safe pairs, so no pair accuracy")
    lines += [
        f"On the {settings['n_test']} test samples ({settings['n_test_positive']} vulnerable). A model's ROC-AUC is "
        "the mean over its seeds with saved test predictions; its difference from the baseline has a "
        f"paired, class-stratified bootstrap interval ({settings['n_boot']} resamples, "
        f"seed {settings['bootstrap_seed']}, "
        f"{level:g} % percentile interval; one set of resamples for every seed and the "
        "baseline), and the verdict follows the interval. McNemar's test compares each seed's decisions, at its "
        "threshold chosen on validation, with the baseline's at its own. "
        f"VD-S is the false-negative rate at a false-positive rate <= {100 * settings['vd_s_max_fpr']:g} %; "
        "P@1 % the precision among the 1 % highest scores; flagged the share of test samples flagged at the "
        f"run's threshold; {pair_text}. Means over seeds.",
        "",
    ]
    return "\n".join(lines)


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
        *([render_comparison(summary)] if "comparisons" in summary else []),
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
