"""DVC stages `train_<kind>@S` (transformer, gnn, fusion, ...): python stages/train.py KIND SEED."""
import argparse
import sys

from streamguard.kinds import get_kind, kind_names, load_config
from streamguard.runner import guarded
from streamguard.runs import train_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", help=f"model kind: {', '.join(kind_names())}")
    parser.add_argument("seed", type=int)
    args = parser.parse_args()
    get_kind(args.model)  # an unknown kind is a one-line error listing the known ones
    cfg = load_config("params.yaml")
    train_run(args.model, cfg, args.seed, cfg.paths.outputs, cfg.paths.processed, cfg.paths.lr_find, cfg.paths.logs)
    # A collapsed run is a result: its status is in metrics.json and the stage exits 0.


if __name__ == "__main__":
    sys.exit(guarded(main))
