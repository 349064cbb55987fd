"""params.yaml -> typed, validated, frozen config.

Every knob in params.yaml is either a value or `null`; `null` means "take it from the profile".
Profiles (`quick`, the default; `production`, the plan's A100 hyperparameters; `devign-cpu`, model sizes
for real Devign-sized data on a 2-core CPU, used by bench/bench_devign.py) live in PROFILES below, so `dvc exp run -S profile=production` switches them
all at once. `Config.sources` records where each resolved value came from.

Errors: an unknown key, a wrong type or an out-of-range value raises ConfigError naming the key.
"""
from __future__ import annotations

import dataclasses
import difflib
import pathlib
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import yaml

from .errors import ConfigError


def _range(lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> dict:
    return {"lo": lo, "hi": hi, "lo_open": lo_open}


def rng(default: Any, lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> Any:
    """A dataclass field with a validated numeric range."""
    return field(default=default, metadata=_range(lo, hi, lo_open))


@dataclass(frozen=True)
class SyntheticConfig:
    n_functions: int = rng(1200, 20)
    vuln_ratio: float = rng(0.5, 0.0, 1.0, lo_open=True)
    cwes: Optional[tuple[str, ...]] = None


@dataclass(frozen=True)
class FilesConfig:
    # Either official split files (train/valid/test) or one `path` that prepare splits itself.
    train: Optional[str] = None
    valid: Optional[str] = None
    test: Optional[str] = None
    path: Optional[str] = None
    format: Literal["auto", "jsonl", "json", "csv", "parquet"] = "auto"
    # Our field -> the file's field. Defaults read the CodeXGLUE / Devign layout with no map.
    # `code` and `label` are required in every record; `id`, `group` (split unit) and `project` are optional.
    fields: dict[str, str] = field(default_factory=lambda: {
        "code": "func", "label": "target", "id": "idx", "group": "commit_id", "project": "project"})


@dataclass(frozen=True)
class SplitConfig:
    valid_fraction: float = rng(0.1, 0.0, 0.5, lo_open=True)
    test_fraction: float = rng(0.1, 0.0, 0.5, lo_open=True)
    # Cross-project evaluation: these projects form the test split, the rest train/valid.
    test_projects: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataConfig:
    source: Literal["synthetic", "files"] = "synthetic"
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    files: FilesConfig = field(default_factory=FilesConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    max_code_chars: int = rng(200_000, 100)  # longer functions are skipped and counted
    limit: Optional[int] = rng(None, 1)  # keep at most this many samples per split (smoke runs)


@dataclass(frozen=True)
class TokenizerConfig:
    kind: Literal["bpe", "pretrained"] = "bpe"
    pretrained: Optional[str] = None  # local path or hub id, with kind=pretrained
    vocab_size: int = rng(2000, 300, 200_000)
    min_frequency: int = rng(2, 1)
    max_length: int = rng(256, 16, 8192)


@dataclass(frozen=True)
class GraphConfig:
    max_nodes: int = rng(32, 2, 4096)
    max_stmt_tokens: int = rng(16, 1, 512)
    min_feature_freq: int = rng(2, 1)
    workers: int = rng(2, 1, 64)


@dataclass(frozen=True)
class TransformerConfig:
    pretrained: Optional[str] = None  # local path or hub id; None builds a small model from config
    hidden_size: int = rng(64, 8)
    num_layers: int = rng(2, 1, 48)
    num_heads: int = rng(4, 1)
    intermediate_size: int = rng(128, 8)
    dropout: float = rng(0.1, 0.0, 0.9)
    batch_size: int = rng(32, 1)
    grad_accum: int = rng(1, 1)
    epochs: int = rng(8, 1)
    patience: int = rng(4, 1)
    # A small model trained from scratch needs a higher LR than the plan's fine-tuning range
    # (1e-5..5e-5, used by the production profile).
    lr_min: float = rng(1e-4, 0.0, 1.0, lo_open=True)
    lr_max: float = rng(1e-3, 0.0, 1.0, lo_open=True)
    warmup_ratio: float = rng(0.1, 0.0, 0.5)
    weight_decay: float = rng(0.01, 0.0, 1.0)
    max_grad_norm: float = rng(1.0, 0.0, lo_open=True)
    loss_weighting: Literal["inverse_frequency", "none"] = "inverse_frequency"
    balanced_sampler: bool = False
    vuln_multiplier: float = rng(1.0, 0.0, lo_open=True)


@dataclass(frozen=True)
class GNNConfig:
    hidden_size: int = rng(64, 8)
    num_layers: int = rng(3, 1, 16)
    conv: Literal["rgcn", "gine", "ggnn"] = "gine"  # rgcn is ~10x slower on CPU (per-relation loop)
    pooling: Literal["attention", "meanmax"] = "attention"
    dropout: float = rng(0.1, 0.0, 0.9)
    batch_size: int = rng(64, 1)
    grad_accum: int = rng(1, 1)
    epochs: int = rng(30, 1)
    patience: int = rng(8, 1)
    # Quick runs see few steps per epoch: a range above the plan's 1e-4..1e-3 (production profile).
    lr_min: float = rng(5e-4, 0.0, 1.0, lo_open=True)
    lr_max: float = rng(2e-3, 0.0, 1.0, lo_open=True)
    warmup_ratio: float = rng(0.1, 0.0, 0.5)
    weight_decay: float = rng(1e-4, 0.0, 1.0)
    max_grad_norm: float = rng(1.0, 0.0, lo_open=True)
    focal_gamma: float = rng(1.5, 0.0, 10.0)
    balanced_sampler: bool = True


@dataclass(frozen=True)
class FusionConfig:
    hidden_size: int = rng(64, 8)
    dropout: float = rng(0.1, 0.0, 0.9)
    batch_size: int = rng(32, 1)
    grad_accum: int = rng(2, 1)
    epochs: int = rng(4, 1)
    patience: int = rng(3, 1)
    base_lr: float = rng(1e-3, 0.0, 1.0, lo_open=True)
    # Discriminative LRs: multipliers of base_lr per component.
    lr_mult_transformer: float = rng(0.1, 0.0, 10.0)
    lr_mult_gnn: float = rng(0.5, 0.0, 10.0)
    lr_mult_fusion: float = rng(1.0, 0.0, 10.0, lo_open=True)
    warmup_ratio: float = rng(0.1, 0.0, 0.5)
    weight_decay: float = rng(0.01, 0.0, 1.0)
    max_grad_norm: float = rng(1.0, 0.0, lo_open=True)
    oof_folds: int = rng(3, 2, 20)
    oof_epochs: int = rng(8, 1)


@dataclass(frozen=True)
class TrainConfig:
    amp: Literal["auto", "off", "fp16", "bf16"] = "auto"
    # Threshold-free ROC-AUC makes a steadier early-stopping signal than F1 at 0.5.
    select_metric: Literal["f1", "roc_auc", "pr_auc", "mcc", "loss"] = "roc_auc"
    num_workers: Optional[int] = rng(None, 0, 64)  # None: the hardware profile decides
    collapse_patience: int = rng(3, 1)
    explode_grad_norm: float = rng(1e4, 0.0, lo_open=True)
    hardware_override: str = "training_config.json"


@dataclass(frozen=True)
class LRFindConfig:
    enabled: bool = True
    steps: int = rng(100, 10, 10_000)
    start_lr: float = rng(1e-7, 0.0, 1.0, lo_open=True)
    end_lr: float = rng(1.0, 0.0, 100.0, lo_open=True)
    ttl_hours: float = rng(168.0, 0.0, lo_open=True)
    cache_dir: str = "training/cache/lr_finder"


@dataclass(frozen=True)
class Config:
    profile: Literal["quick", "production", "devign-cpu"] = "quick"
    seed: int = rng(42, 0, 2**32 - 1)
    seeds: tuple[int, ...] = (42, 2025, 7)
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    gnn: GNNConfig = field(default_factory=GNNConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    lr_find: LRFindConfig = field(default_factory=LRFindConfig)
    # dotted key -> "params.yaml" | "profile:<name>" | "default"
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def section_with_sources(self, name: str) -> tuple[dict, dict]:
        """A section as a plain dict plus the source of each of its keys (for training metadata)."""
        values = dataclasses.asdict(getattr(self, name))
        prefix = name + "."
        return values, {k[len(prefix):]: v for k, v in self.sources.items() if k.startswith(prefix)}


# The quick profile is the dataclass defaults. Other profiles override these keys.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {},
    "production": {
        "tokenizer": {"vocab_size": 50_000, "max_length": 512},
        "graph": {"max_nodes": 50, "max_stmt_tokens": 32},
        "transformer": {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "intermediate_size": 3072,
                        "batch_size": 64, "epochs": 10, "patience": 3, "lr_min": 1e-5, "lr_max": 5e-5},
        "gnn": {"hidden_size": 256, "num_layers": 4, "batch_size": 64, "epochs": 15, "patience": 5,
                "lr_min": 1e-4, "lr_max": 1e-3},
        "fusion": {"hidden_size": 256, "batch_size": 32, "grad_accum": 2, "epochs": 12, "base_lr": 1e-4,
                   "oof_folds": 5, "oof_epochs": 4, "patience": 4},
        "data": {"synthetic": {"n_functions": 20_000}},
    },
    "devign-cpu": {
        # Model sizes for the nine Devign runs on a 2-core CPU (bench/bench_devign.py sets the data files).
        "tokenizer": {"vocab_size": 8000, "max_length": 256},
        "graph": {"max_nodes": 48, "max_stmt_tokens": 16},
        "transformer": {"hidden_size": 128, "num_layers": 2, "num_heads": 4, "intermediate_size": 256,
                        "batch_size": 32, "epochs": 3, "patience": 2},
        "gnn": {"hidden_size": 128, "num_layers": 3, "batch_size": 64, "epochs": 10, "patience": 3,
                "lr_min": 1e-4, "lr_max": 1e-3},
        "fusion": {"hidden_size": 128, "epochs": 2, "patience": 2, "base_lr": 1e-3, "oof_folds": 2, "oof_epochs": 1},
    },
}


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`; return it in canonical form."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"params.yaml: '{key}' must be one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"params.yaml: '{key}' must be a list, got {type(value).__name__} {value!r}")
        return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ConfigError(f"params.yaml: '{key}' must be a mapping of strings, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"params.yaml: '{key}' must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"params.yaml: '{key}' must be an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"params.yaml: '{key}' must be a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"params.yaml: '{key}' must be a string, got {type(value).__name__} {value!r}")
        return value
    raise ConfigError(f"params.yaml: '{key}' has unsupported type {_type_name(tp)}")  # pragma: no cover


def _check_range(value: Any, meta: Any, key: str) -> None:
    if value is None or not meta or not isinstance(value, (int, float)):
        return
    lo, hi, lo_open = meta.get("lo"), meta.get("hi"), meta.get("lo_open")
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise ConfigError(f"params.yaml: '{key}' must be {'>' if lo_open else '>='} {lo}, got {value}")
    if hi is not None and value > hi:
        raise ConfigError(f"params.yaml: '{key}' must be <= {hi}, got {value}")


def _build(cls: type, given: Any, profile: dict, key: str, profile_name: str, sources: dict) -> Any:
    """Build dataclass `cls` from params (`given`) over profile values over defaults."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ConfigError(f"params.yaml: '{key}' must be a mapping, got {type(given).__name__} {given!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name != "sources"]
    for k in given:
        if k not in names:
            close = difflib.get_close_matches(str(k), names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"params.yaml: unknown key '{key + '.' if key else ''}{k}'{hint}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name == "sources":
            continue
        dotted = f"{key}.{f.name}" if key else f.name
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            kwargs[f.name] = _build(tp, given.get(f.name), profile.get(f.name, {}), dotted, profile_name, sources)
            continue
        if given.get(f.name) is not None:
            value, src = given[f.name], "params.yaml"
        elif f.name in profile:
            value, src = profile[f.name], f"profile:{profile_name}"
        else:
            value = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            src = "default"
        value = _coerce(value, tp, dotted)
        _check_range(value, f.metadata, dotted)
        kwargs[f.name] = value
        sources[dotted] = src
    return cls(**kwargs)


def _cross_checks(cfg: Config) -> None:
    for name in ("transformer", "gnn"):
        sec = getattr(cfg, name)
        if sec.lr_min > sec.lr_max:
            raise ConfigError(f"params.yaml: '{name}.lr_min' ({sec.lr_min}) must be <= '{name}.lr_max' ({sec.lr_max})")
    t = cfg.transformer
    if t.pretrained is None and t.hidden_size % t.num_heads:
        raise ConfigError(f"params.yaml: 'transformer.hidden_size' ({t.hidden_size}) must be divisible by 'transformer.num_heads' ({t.num_heads})")
    if t.pretrained and cfg.tokenizer.kind != "pretrained":
        raise ConfigError("params.yaml: 'transformer.pretrained' needs its own tokenizer: set 'tokenizer.kind: pretrained' "
                          "and 'tokenizer.pretrained' to the same checkpoint")
    if cfg.tokenizer.kind == "pretrained" and not cfg.tokenizer.pretrained:
        raise ConfigError("params.yaml: 'tokenizer.pretrained' must name a path or hub id when 'tokenizer.kind' is pretrained")
    if not cfg.seeds:
        raise ConfigError("params.yaml: 'seeds' must list at least one seed")
    s = cfg.data.split
    if s.valid_fraction + s.test_fraction >= 0.9:
        raise ConfigError("params.yaml: 'data.split.valid_fraction' + 'data.split.test_fraction' must be < 0.9")
    if cfg.data.source == "files":
        f = cfg.data.files
        if not f.path and not f.train:
            raise ConfigError("params.yaml: 'data.files.train' (official splits) or 'data.files.path' (one file to split) must be set when 'data.source' is files")
        if f.train and s.test_projects:
            raise ConfigError("params.yaml: 'data.split.test_projects' cannot be combined with official split files "
                              "('data.files.train'); use 'data.files.path' for a cross-project split")
        for k in ("code", "label"):
            if k not in f.fields:
                raise ConfigError(f"params.yaml: 'data.files.fields.{k}' is required")


def from_dict(params: dict | None) -> Config:
    params = dict(params or {})
    profile_name = params.get("profile") or "quick"
    if profile_name not in PROFILES:
        raise ConfigError(f"params.yaml: 'profile' must be one of {sorted(PROFILES)}, got {profile_name!r}")
    sources: dict[str, str] = {}
    cfg = _build(Config, params, PROFILES[profile_name], "", profile_name, sources)
    cfg = dataclasses.replace(cfg, sources=sources)
    _cross_checks(cfg)
    return cfg


def load_config(path: str | pathlib.Path = "params.yaml", overrides: dict | None = None) -> Config:
    """Read and validate params.yaml. `overrides` maps dotted keys to values (tests, CLI)."""
    p = pathlib.Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: file not found (run from the project root)")
    try:
        params = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{p}{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(params, dict):
        raise ConfigError(f"{p}: top level must be a mapping")
    for dotted, value in (overrides or {}).items():
        node = params
        *parents, leaf = dotted.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):  # absent, or an empty section (None)
                node[part] = {}
            node = node[part]
        node[leaf] = value
    return from_dict(params)
