"""What the pipeline needs of a model kind, in one class.

A kind joins a params.yaml section, the processed data and an `nn.Module`: it builds the model from a
JSON-able spec (saved with the weights, so a checkpoint alone rebuilds its model), picks its dataset and
collate for a split, its loss, its parameter groups and its per-step batch limits. The run orchestration
in `streamguard.runs` and the stages, aggregate, scan and CLI only ever talk to kinds through this class.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Mapping

from torch import nn

from ..train.engine import ParamGroupSpec
from ..train.losses import make_loss


class ModelKind:
    """Subclass, set the class attributes, implement `spec`, `build`, `dataset`, `collate`, `batch`."""

    name: ClassVar[str]
    # Frozen dataclass for the params.yaml section `name`; its defaults are the quick profile's values
    # (the section's values in conf/config.yaml and conf/profile/*.yaml are what runs).
    # Run directories live at {outputs}/{output_dir}/seed_{S}. The built-in kinds keep the original
    # plan's `<kind>_v17` names so that outputs and metrics stay comparable across versions.
    output_dir: ClassVar[str]
    # Registry order (training order, listings): a kind comes after its backbones.
    order: ClassVar[int] = 100
    # Largest per-step batch per hardware profile (train/hardware.py); a missing profile means no cap.
    batch_limits: ClassVar[Mapping[str, int]] = {}
    # Which encoded views of a function the model reads: "tokens", "graph", "lexical" (data/lexical.py).
    inputs: ClassVar[tuple[str, ...]] = ("tokens",)
    # True: its LR comes from the lr_find stage; False: `learning_rate` reads it from the section.
    uses_lr_finder: ClassVar[bool] = True
    # Kinds whose trained weights (same seed) initialise this one, e.g. the fusion's branches.
    backbones: ClassVar[tuple[str, ...]] = ()
    # True: runs start from the pretrain stage's trunk (runs/pretrain.py) when it wrote one (`load_pretrained`).
    starts_from_pretrain: ClassVar[bool] = False
    # True: the fusion-style out-of-fold predictions on train (section needs `oof_folds`, `oof_epochs`).
    out_of_fold: ClassVar[bool] = False
    # Section keys that do not shape the LR-finder curve (left out of its cache key).
    not_lr_shaping: ClassVar[tuple[str, ...]] = ("epochs", "patience", "warmup_ratio")

    def spec(self, cfg, data) -> dict[str, Any]:
        """Everything needed to rebuild the architecture; must hold `"kind": self.name`."""
        raise NotImplementedError

    def build(self, spec: Mapping[str, Any]) -> nn.Module:
        raise NotImplementedError

    def dataset(self, data, split: str):
        """The split's dataset (with `.labels`, and `.lengths` where length-grouped batching applies)."""
        raise NotImplementedError

    def collate(self, pad_id: int) -> Callable:
        raise NotImplementedError

    def batch(self, tokens: dict | None, graph, lexical=None) -> Any:
        """A model input from padded tokens, a PyG Batch and/or lexical logits `[B]` (used by scan)."""
        raise NotImplementedError

    def loss(self, section, weighting: Mapping[str, Any]) -> nn.Module:
        return make_loss("bce", pos_weight=weighting["pos_weight"])

    def param_groups(self, model: nn.Module, section) -> list[ParamGroupSpec] | None:
        """Named groups with LR multipliers (discriminative LRs); None trains all parameters at one LR."""
        return None

    def learning_rate(self, section) -> float:
        """The LR when `uses_lr_finder` is False."""
        raise NotImplementedError(f"{self.name}: set uses_lr_finder or implement learning_rate")

    def load_backbones(self, model: nn.Module, weights: Mapping[str, dict]) -> None:
        """Load the best weights of each kind in `backbones` into `model`."""

    def load_pretrained(self, model: nn.Module, state: Mapping[str, Any]) -> None:
        """Initialise `model` from the pretrain stage's weights (kinds with `starts_from_pretrain`)."""
        raise NotImplementedError(f"{self.name}: set starts_from_pretrain only with load_pretrained")

    def extra_outputs(self, data, out_dir) -> None:
        """Kind-specific files written beside a finished run's results."""

    def validate(self, cfg) -> None:
        """Cross-key checks on the resolved config; raise ConfigError naming the keys."""
