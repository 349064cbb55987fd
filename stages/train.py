"""DVC stages `train_<kind>@S` (transformer, gnn, fusion, ...): python stages/train.py KIND SEED.

With `train.launcher` set to a torchrun prefix the script re-executes itself under it; run under
torchrun (by that or by hand) it trains with DistributedDataParallel (docs/distributed.md).
"""
import argparse
import os
import sys

from streamguard.kinds import get_kind, kind_names, load_config
from streamguard.runner import guarded
from streamguard.runs import train_run
from streamguard.train import distributed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", help=f"model kind: {', '.join(kind_names())}")
    parser.add_argument("seed", type=int)
    args = parser.parse_args()
    get_kind(args.model)  # an unknown kind is a one-line error listing the known ones
    cfg = load_config("params.yaml")
    command = distributed.launcher_argv(cfg.train.launcher, [__file__, *sys.argv[1:]])
    if command is not None:
        sys.stdout.flush()
        os.execvp(command[0], command)  # the same process, so DVC waits for the launcher and its exit code
    with distributed.session(cfg.train.distributed, cfg.train.dist_timeout_s):
        train_run(args.model, cfg, args.seed, cfg.paths.outputs, cfg.paths.processed, cfg.paths.lr_find,
                  cfg.paths.logs, cfg.paths.pretrain)
    # A collapsed run is a result: its status is in metrics.json and the stage exits 0.


if __name__ == "__main__":
    sys.exit(guarded(main))
