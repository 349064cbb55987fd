"""DVC stage `pretrain`: masked-token pretraining of the transformer's trunk on the training split -> paths.pretrain.

The transformer's LR finder and runs start from it (streamguard/runs/pretrain.py); with
`pretrain.enabled: false` or `transformer.pretrained` set it records that it skipped.
"""
import sys

from streamguard.kinds import load_config
from streamguard.runner import guarded
from streamguard.runs.pretrain import pretrain


def main() -> None:
    cfg = load_config("params.yaml")
    pretrain(cfg, cfg.paths.processed, cfg.paths.pretrain)


if __name__ == "__main__":
    sys.exit(guarded(main))
