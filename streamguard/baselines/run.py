"""The baseline stage's work: TF-IDF + LR on the prepared splits, written like a training run.

`{out_dir}/metrics.json` (`model, seed, status, threshold, test, val`, the threshold chosen on validation
by the same policy as the neural runs) and `{out_dir}/test_predictions.npy` (float32, test-split order)
are what the report compares every model against. The wall time goes to `{log_dir}/baseline_log.json`,
not into the out, so the out reproduces bit for bit.
"""
from __future__ import annotations

import pathlib
import time

import numpy as np

from ..data.splits import read_split
from ..io import save_numpy_atomic, write_json_atomic
from ..train.metrics import choose_threshold, compute_metrics
from .tfidf import fit_predict

NAME = "tfidf_lr"
SPLITS = {"train": "train", "val": "valid", "test": "test"}


def _read_split(path: pathlib.Path) -> tuple[list[str], np.ndarray]:
    records = [record for _, record in read_split(path, ("code", "label"))]
    return [r["code"] for r in records], np.asarray([r["label"] for r in records], dtype=np.int64)


def run_tfidf_baseline(processed: str | pathlib.Path, out_dir: str | pathlib.Path, seed: int, policy: str,
                       target_fpr: float | None, log_dir: str | pathlib.Path | None = None) -> dict:
    start = time.perf_counter()
    splits = {name: _read_split(pathlib.Path(processed) / "splits" / f"{split}.jsonl") for name, split in SPLITS.items()}
    probs = fit_predict(*splits["train"], {"val": splits["val"][0], "test": splits["test"][0]}, seed=seed)
    threshold = choose_threshold(splits["val"][1], probs["val"], policy, target_fpr)
    metrics = {"model": NAME, "seed": int(seed), "status": "ok", "threshold": threshold,
               "test": compute_metrics(splits["test"][1], probs["test"], threshold),
               "val": compute_metrics(splits["val"][1], probs["val"], threshold)}
    out = pathlib.Path(out_dir)
    save_numpy_atomic(out / "test_predictions.npy", probs["test"].astype(np.float32))
    write_json_atomic(out / "metrics.json", metrics)
    write_json_atomic(pathlib.Path(log_dir or out) / "baseline_log.json",
                      {"model": NAME, "wall_time_s": time.perf_counter() - start})
    return metrics
