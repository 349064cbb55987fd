"""Real-data benchmarks on Devign (CodeXGLUE defect detection, its own train/valid/test split).

    python bench/bench_devign.py prepare            # full prepare wall time + stage timings
    python bench/bench_devign.py train [--seeds 42 2025 7] [--profile devign-cpu]
                                                    # LR finder, 3 models x seeds, TF-IDF + LR baseline
    python bench/bench_devign.py report [--profile devign-cpu]
                                                    # re-score the trained runs: metrics at the tuned
                                                    # threshold and at 0.5, next to the baseline
    python bench/bench_devign.py compare [--seeds 42] [--profile devign-cpu]
                                                    # the pipeline's baseline stage and aggregate over the
                                                    # trained runs: bootstrap intervals, McNemar, VD-S

Ablations: `--set KEY=VALUE` (repeatable) overrides params, `--kinds` limits the kinds trained, `--runs
NAME` names the run tree (default: the profile), `--branches-from NAME` links the transformer and GNN
runs of another tree so only the fusion trains, e.g.

    python bench/bench_devign.py train --seeds 42 --kinds fusion --set fusion.lexical=false \
        --runs devign-cpu-nolex --branches-from devign-cpu

Across projects (train and validate on FFmpeg, test on QEMU; its own prepared data):

    python bench/bench_devign.py train --seeds 42 --set 'data.split.test_projects=[qemu]' \
        --processed processed-xproject --runs xproject

Works in bench/work/devign/ (git-ignored) so the repository's own data/processed and training/outputs
are untouched. Reads ../shared/datasets/devign/ relative to the repository root; exits cleanly with a
message when the data is absent. `train` reuses the prepared data of a previous `prepare` run.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import pathlib
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
DEVIGN = REPO.parent / "shared" / "datasets" / "devign"
WORK = REPO / "bench" / "work" / "devign"
sys.path.insert(0, str(REPO))

from streamguard.config import compose_params, from_dict  # noqa: E402
from streamguard.kinds import registry  # noqa: E402
from streamguard.runner import setup_logging  # noqa: E402

METRICS = ("accuracy", "f1", "roc_auc", "pr_auc")


def _all_splits_file() -> pathlib.Path:
    """train + valid + test as one gzip file (gzip members concatenate) in the work directory."""
    out = WORK / "devign_all.jsonl.gz"
    if not out.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"".join((DEVIGN / f"{split}.jsonl.gz").read_bytes() for split in ("train", "valid", "test")))
    return out


def devign_config(profile: str, overrides: list[str] | None = None):
    """What `dvc exp run -S profile=... -S data.source=files ...` would compose into params.yaml."""
    import yaml

    extra = {}
    for item in overrides or []:
        key, _, value = item.partition("=")
        extra[key] = yaml.safe_load(value)  # as `dvc exp run -S` reads a value: [qemu], false, 1e-3
    if extra.get("data.split.test_projects"):
        # A cross-project split is prepare's own: one file holding all three official splits.
        files = {"data.files.path": str(_all_splits_file())}
    else:
        files = {f"data.files.{split}": str(DEVIGN / f"{split}.jsonl.gz") for split in ("train", "valid", "test")}
    params = compose_params({
        "profile": profile,
        "data.source": "files",
        **files,
        "lr_find.cache_dir": str(WORK / "lr_cache"),
        **extra,
    }, conf_dir=REPO / "conf")
    return from_dict(params, kinds=registry())


def cmd_prepare(args) -> dict:
    from streamguard.data.pipeline import prepare

    cfg = devign_config(args.profile, args.set)
    t0 = time.perf_counter()
    stats = prepare(cfg, WORK / args.processed)
    wall = time.perf_counter() - t0
    n = sum(v["total"] for v in stats["splits"].values())
    result = {"functions": n, "wall_s": round(wall, 1), "timings_s": stats["timings_s"],
              "graph_functions_per_s": round(n / stats["timings_s"]["build_graphs"], 1),
              "duplicates_removed": stats["duplicates_removed"], "conflicting_removed": stats["conflicting_removed"],
              "parse_failure_rate": {s: round(v["parse_failure_rate"], 4) for s, v in stats["graphs"].items()},
              "truncation_rate": {s: round(v["rate"], 4) for s, v in stats["truncation"].items()}}
    print(json.dumps(result, indent=2))
    return result


def tfidf_baseline(processed: pathlib.Path, seed: int, both: bool = False) -> dict:
    from streamguard.baselines.tfidf import fit_predict
    from streamguard.train.metrics import compute_metrics, tune_threshold

    def load(split):
        rows = [json.loads(line) for line in (processed / "splits" / f"{split}.jsonl").open(encoding="utf-8")]
        return [r["code"] for r in rows], np.array([r["label"] for r in rows])

    t0 = time.perf_counter()
    (xtr, ytr), (xva, yva), (xte, yte) = load("train"), load("valid"), load("test")
    scores = fit_predict(xtr, ytr, {"valid": xva, "test": xte}, seed)
    threshold = tune_threshold(yva, scores["valid"])
    probs = scores["test"]
    test = compute_metrics(yte, probs, threshold=threshold)
    wall = time.perf_counter() - t0
    if both:
        return {"tuned": test, "half": compute_metrics(yte, probs, threshold=0.5), "wall_s": wall}
    return {"test": test, "wall_s": wall}


def _same_pretrain(cfg, data, pretrain_dir: pathlib.Path) -> bool:
    """A finished pretraining in this run tree with today's settings (what DVC's cache does for the pipeline)."""
    from streamguard.runs import get_kind
    from streamguard.runs.pretrain import META_FILE

    path = pretrain_dir / META_FILE
    if not path.exists():
        return False
    meta = json.loads(path.read_text())
    if meta.get("status") != "ok":
        return False
    return meta.get("settings") == dataclasses.asdict(cfg.pretrain) and \
        meta.get("spec") == get_kind("transformer").spec(cfg, data)["transformer"]


def cmd_train(args) -> dict:
    from streamguard import runs
    from streamguard.runs.pretrain import pretrain
    from streamguard.data.datasets import ProcessedData
    from streamguard.data.identity import dataset_hash

    cfg = devign_config(args.profile, args.set)
    processed = WORK / args.processed
    if not (processed / "dataset_stats.json").exists():
        cmd_prepare(args)
    outputs = WORK / "outputs" / (args.runs or args.profile)
    tree = args.runs or args.profile
    lr_dir = WORK / "lr_find" / tree
    pretrain_dir = WORK / "pretrain" / tree
    kinds = args.kinds or runs.kind_names()
    if args.branches_from:
        for seed in args.seeds:
            for kind in ("transformer", "gnn"):
                link, target = runs.run_dir(outputs, kind, seed), runs.run_dir(WORK / "outputs" / args.branches_from, kind, seed)
                if not link.exists():
                    link.parent.mkdir(parents=True, exist_ok=True)
                    link.symlink_to(target.resolve(), target_is_directory=True)
    data = ProcessedData(processed)
    ds_hash = dataset_hash(processed)
    timings: dict[str, list[float]] = {"lr_find": [], "pretrain": [0.0]}
    if "transformer" in kinds and not _same_pretrain(cfg, data, pretrain_dir):
        t = time.perf_counter()
        pretrain(cfg, processed, pretrain_dir)
        timings["pretrain"] = [time.perf_counter() - t]
    t = time.perf_counter()
    for kind in kinds:
        if runs.get_kind(kind).uses_lr_finder:
            runs.lr_find(kind, cfg, data, ds_hash, lr_dir / kind, pretrain_dir=pretrain_dir)
    timings["lr_find"].append(time.perf_counter() - t)
    results: dict[str, list[dict]] = {kind: [] for kind in kinds}
    for seed in args.seeds:
        for kind in kinds:
            t = time.perf_counter()
            runs.train_run(kind, cfg, seed, outputs, processed, lr_dir=lr_dir, pretrain_dir=pretrain_dir)
            timings.setdefault(kind, []).append(time.perf_counter() - t)
            metrics = json.loads((runs.run_dir(outputs, kind, seed) / "metrics.json").read_text())
            results[kind].append(metrics)
            logging.getLogger("bench").info("%s seed %d: %s", kind, seed, {m: metrics["test"][m] for m in METRICS})
    baseline = tfidf_baseline(processed, args.seeds[0])

    def summarize(values):
        arr = np.array([v for v in values if v is not None], dtype=float)
        return (float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0) if len(arr) else (None, None)

    table = {}
    for kind, runs_ in results.items():
        table[kind] = {m: summarize([r["test"][m] for r in runs_]) for m in METRICS}
        table[kind]["status"] = [r["status"] for r in runs_]
        table[kind]["wall_s_per_seed"] = round(float(np.mean(timings[kind])), 1)
        if kind == "fusion":
            table[kind]["oof"] = {m: summarize([r.get("oof", {}).get(m) for r in runs_]) for m in METRICS}
    table["tfidf_lr"] = {m: (baseline["test"][m], 0.0) for m in METRICS}
    table["tfidf_lr"]["wall_s_per_seed"] = round(baseline["wall_s"], 1)
    table["lr_find_wall_s"] = round(timings["lr_find"][0], 1)
    table["pretrain_wall_s"] = round(timings["pretrain"][0], 1)
    out = {"profile": args.profile, "runs": args.runs or args.profile, "overrides": args.set, "seeds": args.seeds,
           "results": table}
    (WORK / f"results_{args.runs or args.profile}.json").write_text(json.dumps(out, indent=2))
    print(f"\nDevign test split, profile {args.profile}, seeds {args.seeds} (mean +- std)")
    print(f"{'model':<12}" + "".join(f"{m:>18}" for m in METRICS) + f"{'CPU s/seed':>12}")
    for kind in ("tfidf_lr", *kinds):
        row = table[kind]
        cells = "".join(f"{row[m][0]:>11.4f} +-{row[m][1]:.3f}" if row[m][0] is not None else f"{'n/a':>18}" for m in METRICS)
        print(f"{kind:<12}{cells}{row['wall_s_per_seed']:>12}")
    return out


def _scores_at_half(outputs: pathlib.Path, processed: pathlib.Path, kind: str, seed: int) -> dict:
    """Test metrics of a run's best weights at threshold 0.5 (metrics.json holds the tuned threshold)."""
    from streamguard import runs
    from streamguard.data.datasets import ProcessedData
    from streamguard.train.checkpoint import load_model_spec
    from streamguard.train.engine import CHECKPOINT_FILE, load_best_weights, predict
    from streamguard.train.metrics import compute_metrics

    ckpt = runs.run_dir(outputs, kind, seed) / CHECKPOINT_FILE
    model = runs.build_model(load_model_spec(ckpt))
    model.load_state_dict(load_best_weights(ckpt))
    data = ProcessedData(processed)
    ds = runs.get_kind(kind).dataset(data, "test")
    loader = runs.make_loaders(runs.get_kind(kind), {"test": ds}, 64, seed, data.pad_id, False)["test"]
    pred = predict(model, loader, "cpu")
    return compute_metrics(pred.labels, pred.probs, threshold=0.5)


def cmd_report(args) -> dict:
    """Mean +- std over seeds at the tuned threshold and at 0.5, next to TF-IDF + LR at both."""
    import streamguard.baselines.tfidf  # noqa: F401  (fail early if scikit-learn is missing)

    processed = WORK / args.processed
    outputs = WORK / "outputs" / args.profile
    saved = json.loads((WORK / f"results_{args.profile}.json").read_text())
    rows = {}
    from streamguard import runs

    for kind in runs.kind_names():
        tuned, half = [], []
        for seed in args.seeds:
            tuned.append(json.loads((runs.run_dir(outputs, kind, seed) / "metrics.json").read_text())["test"])
            half.append(_scores_at_half(outputs, processed, kind, seed))
        rows[kind] = {"tuned": tuned, "half": half, "wall_s_per_seed": saved["results"][kind]["wall_s_per_seed"]}
    base = tfidf_baseline(processed, args.seeds[0], both=True)

    def fmt(values):
        arr = np.array([v for v in values if v is not None], dtype=float)
        return f"{arr.mean():.3f} +- {arr.std(ddof=1) if len(arr) > 1 else 0.0:.3f}"

    print(f"Devign test split ({sum(1 for _ in open(processed / 'splits' / 'test.jsonl'))} functions), "
          f"profile {args.profile}, seeds {args.seeds}")
    print("| model | accuracy @0.5 | accuracy @tuned | F1 @tuned | ROC-AUC | PR-AUC | CPU s per seed |")
    print("|---|---|---|---|---|---|---|")
    print(f"| TF-IDF + LR | {base['half']['accuracy']:.3f} | {base['tuned']['accuracy']:.3f} | {base['tuned']['f1']:.3f} "
          f"| {base['tuned']['roc_auc']:.3f} | {base['tuned']['pr_auc']:.3f} | {base['wall_s']:.0f} |")
    for kind, r in rows.items():
        print(f"| {kind} | {fmt([h['accuracy'] for h in r['half']])} | {fmt([t['accuracy'] for t in r['tuned']])} "
              f"| {fmt([t['f1'] for t in r['tuned']])} | {fmt([t['roc_auc'] for t in r['tuned']])} "
              f"| {fmt([t['pr_auc'] for t in r['tuned']])} | {r['wall_s_per_seed']:.0f} |")
    return rows


def cmd_compare(args) -> dict:
    """What the baseline and aggregate stages write, over the bench's run tree."""
    from streamguard import runs
    from streamguard.baselines.run import NAME, run_tfidf_baseline
    from streamguard.report import aggregate

    cfg = devign_config(args.profile, args.set)
    processed, outputs = WORK / args.processed, WORK / "outputs" / (args.runs or args.profile)
    t = time.perf_counter()
    run_tfidf_baseline(processed, outputs / NAME, cfg.seed, cfg.train.threshold_policy, cfg.train.target_fpr,
                       WORK / "logs")
    baseline_s = time.perf_counter() - t
    summary = aggregate(outputs, outputs / "production_summary", seeds=args.seeds,
                        models=[runs.get_kind(k).output_dir for k in runs.kind_names()],
                        baseline_dir=outputs / NAME, test_split=processed / "splits" / "test.jsonl")
    print(f"baseline stage: {baseline_s:.1f} s")
    print((outputs / "production_summary" / "production_report.md").read_text())
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["prepare", "train", "report", "compare"])
    parser.add_argument("--profile", default="devign-cpu")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 2025, 7])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a params override")
    parser.add_argument("--kinds", nargs="+", help="train only these kinds")
    parser.add_argument("--runs", help="name of the run tree under bench/work/devign/outputs (default: the profile)")
    parser.add_argument("--branches-from", help="link the transformer and GNN runs of this run tree")
    parser.add_argument("--processed", default="processed",
                        help="prepared-data directory under bench/work/devign (another split: another name)")
    args = parser.parse_args()
    if not (DEVIGN / "train.jsonl.gz").exists():
        print(f"Devign data not found at {DEVIGN}; nothing to measure.")
        return 0
    setup_logging()
    logging.getLogger("streamguard.train.hardware").setLevel(logging.WARNING)
    WORK.mkdir(parents=True, exist_ok=True)
    {"prepare": cmd_prepare, "train": cmd_train, "report": cmd_report, "compare": cmd_compare}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
