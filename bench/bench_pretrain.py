"""Does masked-token pretraining help the transformer? Both arms on the project's own data/processed.

    python bench/bench_pretrain.py [--epochs 20] [--seeds 42 2025 7]

Arm "off": the transformer as params.yaml configures it, from its fresh initialisation. Arm "on": the
pretrain stage's work (`pretrain.epochs` = --epochs) first, then the LR finder and every seed from the
pretrained trunk. Same data, same LR range, same seeds; validation ROC-AUC is what to choose by, test
ROC-AUC is reported beside it. Works in bench/work/pretrain/ (git-ignored); run `dvc repro prepare` first.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
WORK = REPO / "bench" / "work" / "pretrain"
sys.path.insert(0, str(REPO))

from streamguard.runner import setup_logging  # noqa: E402


def run_arm(cfg, processed: pathlib.Path, out: pathlib.Path, seeds: list[int], pretrained: bool) -> dict:
    from streamguard import runs
    from streamguard.data.datasets import ProcessedData
    from streamguard.data.identity import dataset_hash
    from streamguard.runs.pretrain import pretrain

    timings = {}
    pretrain_dir = None
    if pretrained:
        t = time.perf_counter()
        meta = pretrain(cfg, processed, out / "pretrain")
        timings["pretrain_s"] = round(time.perf_counter() - t, 1)
        timings["valid_masked_accuracy"] = round(meta["history"][-1]["valid_accuracy"], 3)
        pretrain_dir = out / "pretrain"
    lf = dataclasses.replace(cfg.lr_find, cache_dir=str(out / "lr_cache"))
    lr = runs.lr_find("transformer", dataclasses.replace(cfg, lr_find=lf), ProcessedData(processed),
                      dataset_hash(processed), out / "lr" / "transformer", out / "logs", pretrain_dir)
    rows = []
    for seed in seeds:
        t = time.perf_counter()
        runs.train_run("transformer", cfg, seed, out / "outputs", processed, out / "lr", out / "logs", pretrain_dir)
        m = json.loads((runs.run_dir(out / "outputs", "transformer", seed) / "metrics.json").read_text())
        rows.append({"seed": seed, "val": m["val"]["roc_auc"], "test": m["test"]["roc_auc"],
                     "wall_s": round(time.perf_counter() - t, 1)})
    return {"lr": lr["lr"], **timings, "runs": rows}


def summary(rows: list[dict], key: str) -> str:
    values = [r[key] for r in rows]
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} +- {spread:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20, help="pretraining epochs of the 'on' arm")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 2025, 7])
    args = parser.parse_args()
    from streamguard.kinds import load_config

    processed = REPO / "data" / "processed"
    if not (processed / "prepare_meta.json").exists():
        print("data/processed not found; run `dvc repro prepare` first.")
        return 1
    setup_logging()
    cfg = load_config(REPO / "params.yaml")
    cfg = dataclasses.replace(cfg, pretrain=dataclasses.replace(cfg.pretrain, enabled=True, epochs=args.epochs))
    results = {}
    for arm in ("off", "on"):
        results[arm] = run_arm(cfg, processed, WORK / f"epochs_{args.epochs}" / arm, args.seeds, arm == "on")
    (WORK / f"results_epochs_{args.epochs}.json").write_text(json.dumps(results, indent=2))
    print(f"\ntransformer, seeds {args.seeds}, ROC-AUC mean +- std (pretraining {args.epochs} epochs)")
    for arm, res in results.items():
        extra = f", pretrain {res['pretrain_s']} s, valid masked accuracy {res['valid_masked_accuracy']}" if arm == "on" else ""
        print(f"{arm:>4}: val {summary(res['runs'], 'val')}, test {summary(res['runs'], 'test')}, lr {res['lr']:.3g}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
