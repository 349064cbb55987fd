"""DVC stage `lr_find`: LR range test (cached) for every kind that takes its LR from it -> paths.lr_find.

The stage runs in one process (dvc.yaml: python). Started under torchrun it still works: rank 0
runs each range test and writes the files, the other ranks get its result (runs.lr.lr_find).
"""
import pathlib
import sys

from streamguard.data.datasets import ProcessedData
from streamguard.data.identity import dataset_hash
from streamguard.kinds import get_kind, kind_names, load_config
from streamguard.runner import guarded
from streamguard.runs import lr_find
from streamguard.train import distributed


def main() -> None:
    cfg = load_config("params.yaml")
    with distributed.session(cfg.train.distributed, cfg.train.dist_timeout_s):
        data = ProcessedData(cfg.paths.processed)
        ds_hash = dataset_hash(cfg.paths.processed)
        for name in kind_names():
            if get_kind(name).uses_lr_finder:
                lr_find(name, cfg, data, ds_hash, pathlib.Path(cfg.paths.lr_find) / name, pathlib.Path(cfg.paths.logs),
                        pathlib.Path(cfg.paths.pretrain))


if __name__ == "__main__":
    sys.exit(guarded(main))
