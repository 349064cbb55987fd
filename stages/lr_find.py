"""DVC stage `lr_find`: LR range test (cached) for the transformer and the GNN -> training/lr_find/."""
import sys

from streamguard.config import load_config
from streamguard.data.datasets import ProcessedData
from streamguard.data.identity import dataset_hash
from streamguard.runner import guarded
from streamguard.runs import LR_DIR, lr_find


def main() -> None:
    cfg = load_config("params.yaml")
    data = ProcessedData("data/processed")
    ds_hash = dataset_hash("data/processed")
    for kind in ("transformer", "gnn"):
        lr_find(kind, cfg, data, ds_hash, LR_DIR / kind)


if __name__ == "__main__":
    sys.exit(guarded(main))
