"""Real run directories on disk, shaped like the training stages write them."""
from __future__ import annotations

import csv
import json
import pathlib

import numpy as np
import pytest

from streamguard.io import write_json_atomic
from streamguard.report.aggregate import METRICS

SEEDS = [42, 2025, 7]
HISTORY_COLUMNS = [
    "epoch", "lr", "train_loss", "val_loss", "val_accuracy", "val_precision", "val_recall", "val_f1",
    "val_roc_auc", "val_pr_auc", "val_mcc", "grad_norm_before_clip", "grad_norm_after_clip",
    "skipped_steps", "extra_note",  # an extra column the report must tolerate
]


def random_test_metrics(rng: np.random.Generator) -> dict[str, float]:
    out = {name: float(rng.uniform(0.35, 0.9)) for name in METRICS}
    out["mcc"] = float(rng.uniform(-0.2, 0.6))
    return out


def write_history(run_dir: pathlib.Path, rng: np.random.Generator, epochs: int) -> dict[str, np.ndarray]:
    cols = {
        "epoch": np.arange(1, epochs + 1),
        "grad_norm_before_clip": rng.uniform(0.2, 8.0, epochs),
        "skipped_steps": rng.integers(0, 4, epochs),
        "train_loss": rng.uniform(0.3, 0.7, epochs),
        "val_loss": rng.uniform(0.3, 0.7, epochs),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "metrics_history.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=HISTORY_COLUMNS)
        writer.writeheader()
        for i in range(epochs):
            row = {c: f"{rng.uniform(0, 1):.6f}" for c in HISTORY_COLUMNS}
            row.update({k: v[i] for k, v in cols.items()})
            row["grad_norm_after_clip"] = min(1.0, cols["grad_norm_before_clip"][i])
            row["extra_note"] = "x"
            writer.writerow(row)
    return cols


def write_run(outputs: pathlib.Path, model: str, seed: int, rng: np.random.Generator, status: str = "ok",
              test: dict | None = None, epochs: int = 4, collapse_reason: str | None = None) -> dict:
    run_dir = outputs / f"{model}_v17" / f"seed_{seed}"
    history = write_history(run_dir, rng, epochs)
    test = test or random_test_metrics(rng)
    metrics = {
        "model": model, "seed": seed, "status": status, "lr": 3e-4, "threshold": 0.5,
        "best_epoch": int(rng.integers(1, epochs + 1)), "epochs_run": epochs,
        "test": test, "val": random_test_metrics(rng),
    }
    write_json_atomic(run_dir / "metrics.json", metrics)
    if collapse_reason:
        write_json_atomic(run_dir / "collapse_report.json", {"reason": collapse_reason, "epoch": 2})
    return {"metrics": metrics, "history": history, "dir": run_dir}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """9 planned runs: transformer all ok; gnn one ok, one absent, one corrupt; fusion one collapsed."""
    root = tmp_path_factory.mktemp("runs")
    outputs = root / "outputs"
    rng = np.random.default_rng(1234)
    runs = {}
    for seed in SEEDS:
        runs[("transformer", seed)] = write_run(outputs, "transformer", seed, rng, epochs=3 + seed % 4)
    runs[("gnn", 42)] = write_run(outputs, "gnn", 42, rng)
    corrupt = write_run(outputs, "gnn", 7, rng)
    text = (corrupt["dir"] / "metrics.json").read_text()
    (corrupt["dir"] / "metrics.json").write_text(text[: len(text) // 2])  # truncated mid-write
    for seed in (42, 7):
        runs[("fusion", seed)] = write_run(outputs, "fusion", seed, rng)
    # collapsed with a (bogus) top F1: it must neither enter the mean nor win best_seed
    collapsed_test = dict(random_test_metrics(rng), f1=0.99)
    runs[("fusion", 2025)] = write_run(outputs, "fusion", 2025, rng, status="collapsed", test=collapsed_test,
                                       collapse_reason="all predictions are one class")
    return {"outputs": outputs, "out": root / "production_summary", "runs": runs}


def write_predictions(run_dir: pathlib.Path, probs) -> None:
    """test_predictions.npy as the training stages write it: float32 [n_test]."""
    run_dir.mkdir(parents=True, exist_ok=True)
    np.save(run_dir / "test_predictions.npy", np.asarray(probs, dtype=np.float32))


def write_test_split(path: pathlib.Path, labels, groups=None, cwe: bool = True, pairs=None) -> pathlib.Path:
    """splits/test.jsonl: one record per sample, in prediction order (`pairs`: an explicit `pair` field)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for i, label in enumerate(labels):
            record = {"id": f"t{i}", "code": f"int f{i}(void) {{ return {i}; }}", "label": int(label),
                      "group": groups[i] if groups is not None else f"solo{i}", "project": "p"}
            if cwe:
                record["cwe"] = "CWE-89"
            if pairs is not None:
                record["pair"] = pairs[i]
            fh.write(json.dumps(record) + "\n")
    return path


def write_baseline(outputs: pathlib.Path, probs, threshold: float = 0.5, rng=None) -> pathlib.Path:
    """The baseline stage's run directory: metrics.json (model tfidf_lr, no seed) and test_predictions.npy."""
    rng = rng or np.random.default_rng(0)
    run_dir = outputs / "tfidf_lr"
    write_json_atomic(run_dir / "metrics.json", {
        "model": "tfidf_lr", "status": "ok", "threshold": threshold,
        "test": random_test_metrics(rng), "val": random_test_metrics(rng)})
    write_predictions(run_dir, probs)
    return run_dir
