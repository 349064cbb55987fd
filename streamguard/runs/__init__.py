"""Run orchestration: config + processed data + a model kind (streamguard.kinds) -> the training engine.

`train/` knows nothing of particular models and `models/` nothing of training; the modules here join
them through the kind registry:

- `setup`: run directory, hardware, the engine's loop config, run metadata;
- `loaders`: datasets, class weighting and loaders for a kind;
- `lr`: the lr_find stage's cached LR range test and its result;
- `train`: one run of one kind for one seed, with resume/restart and backbones;
- `oof`: out-of-fold predictions on the training split;
- `pretrain`: the pretrain stage's masked-token pretraining of the transformer's trunk, and reading it back.
"""
from ..kinds import build_model, get_kind, kind_names
from .loaders import class_weighting, dataset_labels, make_loaders, run_datasets
from .lr import lr_find, recommended_lr
from .oof import out_of_fold
from .setup import hardware_for, loop_config, run_dir, run_info
from .pretrain import pretrained_trunk
from .train import train_or_restart, train_run

__all__ = ["build_model", "class_weighting", "dataset_labels", "get_kind", "hardware_for", "kind_names", "loop_config",
           "lr_find", "make_loaders", "out_of_fold", "pretrained_trunk", "recommended_lr", "run_datasets", "run_dir", "run_info",
           "train_or_restart", "train_run"]
