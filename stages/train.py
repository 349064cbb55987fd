"""DVC stages `train_transformer@S`, `train_gnn@S`, `train_fusion@S`: python stages/train.py MODEL SEED."""
import argparse
import sys

from streamguard.config import load_config
from streamguard.runner import guarded
from streamguard.runs import train_fusion, train_single


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", choices=["transformer", "gnn", "fusion"])
    parser.add_argument("seed", type=int)
    args = parser.parse_args()
    cfg = load_config("params.yaml")
    if args.model == "fusion":
        train_fusion(cfg, args.seed)
    else:
        train_single(args.model, cfg, args.seed)
    # A collapsed run is a result: its status is in metrics.json and the stage exits 0.


if __name__ == "__main__":
    sys.exit(guarded(main))
