"""Fraction of test functions flagged under each threshold policy, for every run of a run tree.

Each run's best weights are re-scored on validation and test; each policy picks its threshold on
validation (as the engine does) and the flagged fraction and F1/MCC on test follow. Nothing is retrained.

    .venv/bin/python bench/bench_threshold_policy.py [--outputs training/outputs] [--processed data/processed]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamguard import runs  # noqa: E402
from streamguard.data.datasets import ProcessedData  # noqa: E402
from streamguard.train.checkpoint import CHECKPOINT_FILE, load_best_weights, load_model_spec  # noqa: E402
from streamguard.train.engine import predict  # noqa: E402
from streamguard.train.metrics import choose_threshold, compute_metrics, flagged_fraction  # noqa: E402

POLICIES = (("f1", None), ("mcc", None), ("fpr", 0.05))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outputs", default="training/outputs")
    parser.add_argument("--processed", default="data/processed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 2025, 7])
    args = parser.parse_args()
    data = ProcessedData(args.processed)
    table: dict[str, dict] = {}
    for kind_name in runs.kind_names():
        kind = runs.get_kind(kind_name)
        for seed in args.seeds:
            ckpt = runs.run_dir(args.outputs, kind_name, seed) / CHECKPOINT_FILE
            if not ckpt.exists():
                continue
            model = runs.build_model(load_model_spec(ckpt))
            model.load_state_dict(load_best_weights(ckpt))
            loaders = runs.make_loaders(kind, {"val": kind.dataset(data, "valid"), "test": kind.dataset(data, "test")},
                                        64, seed, data.pad_id, False)
            val, test = (predict(model, loaders[s], "cpu") for s in ("val", "test"))
            for policy, target in POLICIES:
                t = choose_threshold(val.labels, val.probs, policy, target)
                m = compute_metrics(test.labels, test.probs, t)
                row = table.setdefault(f"{kind_name}/{policy}", {"flagged": [], "f1": [], "mcc": []})
                row["flagged"].append(flagged_fraction(test.probs, t))
                row["f1"].append(m["f1"])
                row["mcc"].append(m["mcc"])
    print(f"{'model/policy':<22}{'flagged':>10}{'test F1':>10}{'test MCC':>10}   (means over seeds)")
    for name, row in table.items():
        mean = {k: sum(v for v in vals if v is not None) / max(1, len([v for v in vals if v is not None]))
                for k, vals in row.items()}
        print(f"{name:<22}{mean['flagged']:>10.3f}{mean['f1']:>10.3f}{mean['mcc']:>10.3f}")
    print(json.dumps(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
