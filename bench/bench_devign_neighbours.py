"""How much of Devign's split is near-twins, and what the bag of n-grams does with them.

    python bench/bench_devign.py prepare          # once: the cleaned, deduplicated split
    python bench/bench_devign_neighbours.py [--processed processed] [--runs devign-cpu --seeds 42]

For every valid and test function, its nearest training function by cosine over the baseline's own
TF-IDF features (`data/lexical.py`), then:

- the share of functions with a training neighbour at cosine >= 0.99 / 0.95 / 0.90 / 0.80, and how often
  that neighbour carries the same label (a vulnerable function and its patched version look alike and
  carry opposite labels, so agreement below 0.5 means the split is full of such pairs);
- a k-nearest-neighbour vote (k = 1, 10, 50, weighted by cosine) as a lexical model of its own;
- TF-IDF + LR's test ROC-AUC on the functions with a near-twin in training and on those without;
- with `--runs`, the same two subsets for each model trained by `bench_devign.py train` (its
  `test_predictions.npy`, seed-averaged ROC-AUC), with the paired bootstrap interval of its difference
  from TF-IDF + LR on each subset (`report.stats.paired_bootstrap_auc_diff`).

Reads `bench/work/devign/<processed>/splits/*.jsonl` (what `bench_devign.py prepare` writes); exits
cleanly with a message when it is absent. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np
from sklearn.metrics import roc_auc_score

REPO = pathlib.Path(__file__).resolve().parents[1]
WORK = REPO / "bench" / "work" / "devign"
sys.path.insert(0, str(REPO))

from streamguard.data.lexical import LexicalModel  # noqa: E402
from streamguard.data.splits import read_split  # noqa: E402
from streamguard.report.stats import paired_bootstrap_auc_diff  # noqa: E402
from streamguard.runs.setup import run_dir  # noqa: E402
from streamguard.train.engine import TEST_PREDICTIONS_FILE  # noqa: E402

THRESHOLDS = (0.99, 0.95, 0.90, 0.80)
KS = (1, 10, 50)
TWIN = 0.95  # the cosine above which a test function counts as having a near-twin in training
CHUNK = 512  # rows of the similarity matrix held at once (512 x 21.7k floats, about 90 MB)


def load(processed: pathlib.Path, split: str) -> tuple[list[str], np.ndarray]:
    rows = [r for _, r in read_split(processed / "splits" / f"{split}.jsonl", fields=("code", "label"))]
    return [r["code"] for r in rows], np.array([r["label"] for r in rows], dtype=np.int64)


def nearest(queries, train, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosines and indices of the k most similar training rows (TF-IDF rows are L2-normalised)."""
    sims, idx = [], []
    for start in range(0, queries.shape[0], CHUNK):
        block = (queries[start:start + CHUNK] @ train.T).toarray()
        top = np.argpartition(-block, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(block, top, axis=1), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        sims.append(np.take_along_axis(block, top, axis=1))
        idx.append(top)
    return np.vstack(sims), np.vstack(idx)


def knn_score(sims: np.ndarray, neighbour_labels: np.ndarray, k: int) -> np.ndarray:
    """Cosine-weighted vote of the k nearest training labels, in [-1, 1]."""
    w = sims[:, :k]
    return (w * (2 * neighbour_labels[:, :k] - 1)).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-12)


def subset_auc(labels: np.ndarray, scores: np.ndarray, mask: np.ndarray) -> float | None:
    """ROC-AUC on the masked functions; None when they do not hold both classes."""
    if len(set(labels[mask].tolist())) < 2:
        return None
    return float(roc_auc_score(labels[mask], scores[mask]))


def by_subset(labels: np.ndarray, scores: np.ndarray, baseline: np.ndarray, subsets: dict) -> dict:
    """Seed-averaged ROC-AUC of `scores` ([n_seeds, n]) on each subset, and its difference from the baseline."""
    out = {}
    for part, mask in subsets.items():
        d = paired_bootstrap_auc_diff(labels[mask], scores[:, mask], baseline[mask])
        if d["diff"] is None:
            out[part] = None
            continue
        auc = float(np.mean([subset_auc(labels, row, mask) for row in scores]))
        out[part] = {"roc_auc": round(auc, 4), "diff_vs_tfidf_lr": round(d["diff"], 4),
                     "ci95": [round(d["ci_low"], 4), round(d["ci_high"], 4)], "n": int(mask.sum())}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processed", default="processed", help="prepared data under bench/work/devign/")
    parser.add_argument("--seed", type=int, default=42, help="the baseline's seed")
    parser.add_argument("--runs", help="a run tree of bench_devign.py train under bench/work/devign/outputs/")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="the runs' seeds")
    args = parser.parse_args()
    processed = WORK / args.processed
    if not (processed / "splits" / "train.jsonl").exists():
        print(f"no prepared Devign split at {processed}; run `python bench/bench_devign.py prepare` first")
        return 0

    t0 = time.perf_counter()
    (xtr, ytr), (xva, yva), (xte, yte) = (load(processed, s) for s in ("train", "valid", "test"))
    model = LexicalModel.fit(xtr, ytr, args.seed)  # the baseline's own model: same settings, same seed
    vectorizer = model.vectorizer
    train = vectorizer.transform(xtr)
    out: dict = {"functions": {"train": len(ytr), "valid": len(yva), "test": len(yte)}}
    for name, codes, labels in (("valid", xva, yva), ("test", xte, yte)):
        sims, idx = nearest(vectorizer.transform(codes), train, max(KS))
        neighbour_labels = ytr[idx]
        logits = model.logits(codes)
        split = {"tfidf_lr_roc_auc": round(float(roc_auc_score(labels, logits)), 4)}
        for k in KS:
            split[f"knn{k}_roc_auc"] = round(float(roc_auc_score(labels, knn_score(sims, neighbour_labels, k))), 4)
        for th in THRESHOLDS:
            near = sims[:, 0] >= th
            agree = float((neighbour_labels[near, 0] == labels[near]).mean()) if near.any() else None
            split[f"cos>={th}"] = {"share": round(float(near.mean()), 4),
                                   "same_label_as_neighbour": None if agree is None else round(agree, 4)}
        twin = sims[:, 0] >= TWIN
        for part, mask in ((f"with_twin_cos>={TWIN}", twin), ("without_twin", ~twin)):
            auc = subset_auc(labels, logits, mask)
            split[f"tfidf_lr_roc_auc_{part}"] = None if auc is None else round(auc, 4)
        out[name] = split
        if name == "test" and args.runs:
            subsets = {"all": np.ones_like(twin), f"with_twin_cos>={TWIN}": twin, "without_twin": ~twin}
            out["models_on_test"] = {}
            for kind in ("transformer", "gnn", "fusion"):
                files = [run_dir(WORK / "outputs" / args.runs, kind, s) / TEST_PREDICTIONS_FILE for s in args.seeds]
                if all(f.exists() for f in files):
                    scores = np.stack([np.load(f) for f in files]).astype(np.float64)
                    out["models_on_test"][kind] = by_subset(labels, scores, logits, subsets)
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
