"""params.yaml -> typed, validated, frozen config.

params.yaml is composed by DVC from `conf/config.yaml` and a profile in `conf/profile/` (DVC's Hydra
composition: `dvc exp run -S profile=production -S seed=7`), so it holds the effective value of every
key. `compose_params` does the same composition in Python (bench scripts, `streamguard params`, tests).
Here each section is a frozen dataclass whose defaults are the quick profile: a key that is absent
(or null for a non-optional field) takes the default, and `Config.sources` records which keys came
from params.yaml and which from the defaults. The model sections are declared by the model kinds
(streamguard.kinds).

Errors: an unknown key, a wrong type or an out-of-range value raises ConfigError naming the key.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import pathlib
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Optional

import yaml

from .errors import ConfigError


def _range(lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> dict:
    return {"lo": lo, "hi": hi, "lo_open": lo_open}


def bounded(default: Any, lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> Any:
    """A dataclass field with a validated numeric range."""
    return field(default=default, metadata=_range(lo, hi, lo_open))


@dataclass(frozen=True)
class SyntheticConfig:
    n_functions: int = bounded(1200, 20)
    vuln_ratio: float = bounded(0.5, 0.0, 1.0, lo_open=True)
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
    valid_fraction: float = bounded(0.1, 0.0, 0.5, lo_open=True)
    test_fraction: float = bounded(0.1, 0.0, 0.5, lo_open=True)
    # Cross-project evaluation: these projects form the test split, the rest train/valid.
    test_projects: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataConfig:
    source: Literal["synthetic", "files"] = "synthetic"
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    files: FilesConfig = field(default_factory=FilesConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    max_code_chars: int = bounded(200_000, 100)  # longer functions are skipped and counted
    limit: Optional[int] = bounded(None, 1)  # keep at most this many samples per split (smoke runs)


@dataclass(frozen=True)
class TokenizerConfig:
    kind: Literal["bpe", "pretrained"] = "bpe"
    pretrained: Optional[str] = None  # local path or hub id, with kind=pretrained
    vocab_size: int = bounded(2000, 300, 200_000)
    min_frequency: int = bounded(2, 1)
    max_length: int = bounded(256, 16, 8192)
    # Windows of max_length tokens kept per function: a longer function is cut into up to this many
    # consecutive windows, encoded one by one and pooled into one embedding (1: truncate as before).
    max_windows: int = bounded(1, 1, 64)
    # Each token also carries its statement's taint flags (source, sink, sanitizer, tainted) from the
    # statement graph, as a 4-bit tag the transformer embeds next to the token (README, ablation).
    flow_tags: bool = True


@dataclass(frozen=True)
class GraphConfig:
    language: Literal["c", "java", "python"] = "c"  # the front-end (tree-sitter grammar + taint catalogs) for prepare and scan
    max_nodes: int = bounded(32, 2, 4096)
    max_stmt_tokens: int = bounded(16, 1, 512)
    min_feature_freq: int = bounded(2, 1)
    workers: int = bounded(2, 1, 64)


@dataclass(frozen=True)
class LexicalConfig:
    """The lexical view prepare writes (streamguard/data/lexical.py): the TF-IDF + LR logit per function."""
    enabled: bool = True
    folds: int = bounded(5, 2, 20)  # out-of-fold logits on the training split


@dataclass(frozen=True)
class PretrainConfig:
    """The pretrain stage (streamguard/runs/pretrain.py): masked-token pretraining of the transformer's
    trunk on the training split's code; the transformer's runs start from it. `transformer.pretrained`
    (a checkpoint) overrides it."""
    enabled: bool = False
    epochs: int = bounded(20, 1)
    batch_size: int = bounded(32, 1)
    lr: float = bounded(1e-3, 0.0, 1.0, lo_open=True)
    warmup_ratio: float = bounded(0.06, 0.0, 0.5)
    weight_decay: float = bounded(0.01, 0.0, 1.0)
    mask_prob: float = bounded(0.15, 0.0, 1.0, lo_open=True)
    max_grad_norm: float = bounded(1.0, 0.0, lo_open=True)
    # A directory of your own unlabelled source files (graph.language) to pretrain on beside the
    # training split; functions equal to a valid or test function are dropped.
    corpus: Optional[str] = None


@dataclass(frozen=True)
class TrainSettings:
    amp: Literal["auto", "off", "fp16", "bf16"] = "auto"
    # Threshold-free ROC-AUC makes a steadier early-stopping signal than F1 at 0.5.
    select_metric: Literal["f1", "roc_auc", "pr_auc", "mcc", "loss"] = "roc_auc"
    # The decision threshold, chosen on validation: max F1 falls very low on imbalanced real data and
    # flags most functions, so the default maximizes MCC; "fpr" takes the lowest threshold whose
    # validation false-positive rate is at most target_fpr (a CI gate's alert budget).
    threshold_policy: Literal["mcc", "f1", "fpr"] = "mcc"
    target_fpr: float = bounded(0.05, 0.0, 1.0)
    num_workers: Optional[int] = bounded(None, 0, 64)  # None: the hardware profile decides
    collapse_patience: int = bounded(3, 1)
    explode_grad_norm: float = bounded(1e4, 0.0, lo_open=True)
    hardware_override: str = "training_config.json"
    # How a train stage is launched (docs/distributed.md): `python`, or a torchrun prefix such as
    # `torchrun --nproc-per-node=2` that stages/train.py re-executes itself under.
    launcher: str = "python"
    distributed: Literal["auto", "off"] = "auto"  # auto: DDP when launched by torchrun with WORLD_SIZE > 1
    dist_timeout_s: float = bounded(1800.0, 0.0, lo_open=True)  # a collective waiting longer raises


@dataclass(frozen=True)
class LRFindConfig:
    enabled: bool = True
    steps: int = bounded(100, 10, 10_000)
    start_lr: float = bounded(1e-7, 0.0, 1.0, lo_open=True)
    end_lr: float = bounded(1.0, 0.0, 100.0, lo_open=True)
    ttl_hours: float = bounded(168.0, 0.0, lo_open=True)
    cache_dir: str = "training/cache/lr_finder"


@dataclass(frozen=True)
class PathsConfig:
    """Where each stage reads and writes; dvc.yaml uses the same values through ${paths.*}."""
    processed: str = "data/processed"
    lr_find: str = "training/lr_find"
    outputs: str = "training/outputs"
    summary: str = "training/outputs/production_summary"
    metrics: str = "metrics"  # small metrics files committed to git (dvc metrics diff / exp show)
    logs: str = "training/logs"  # run-varying facts (wall times, cache hits): not DVC outs, git-ignored
    pretrain: str = "training/pretrain"  # the pretrain stage's trunk weights
    bundle: str = "training/bundle"  # the export stage's model bundle: what `streamguard scan` loads by default


@dataclass(frozen=True)
class ExportConfig:
    """The export stage: which model kind's best seed (by the summary) becomes the bundle."""
    model: str = "fusion"


@dataclass(frozen=True)
class Config:
    profile: str = "quick"  # the name of the conf/profile/ file params.yaml was composed with
    seed: int = bounded(42, 0, 2**32 - 1)
    seeds: tuple[int, ...] = bounded((42, 2025, 7), 0, 2**32 - 1)  # numpy seeds are 32-bit, unsigned
    paths: PathsConfig = field(default_factory=PathsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    lexical: LexicalConfig = field(default_factory=LexicalConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    train: TrainSettings = field(default_factory=TrainSettings)
    lr_find: LRFindConfig = field(default_factory=LRFindConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    # One section per registered model kind (streamguard.kinds), e.g. `cfg.models["gnn"]` or `cfg.gnn`.
    models: dict[str, Any] = field(default_factory=dict)
    # dotted key -> "params.yaml" | "default"
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def __getattr__(self, name: str) -> Any:
        models = self.__dict__.get("models") or {}
        if name in models:
            return models[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def section_with_sources(self, name: str) -> tuple[dict, dict]:
        """A section as a plain dict plus the source of each of its keys (for training metadata)."""
        values = dataclasses.asdict(getattr(self, name))
        prefix = name + "."
        return values, {k[len(prefix):]: v for k, v in self.sources.items() if k.startswith(prefix)}


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
        if not math.isfinite(value):  # YAML's .nan / .inf: no setting means either
            raise ConfigError(f"params.yaml: '{key}' must be a finite number, got {value}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"params.yaml: '{key}' must be a string, got {type(value).__name__} {value!r}")
        return value
    raise ConfigError(f"params.yaml: '{key}' has unsupported type {_type_name(tp)}")  # pragma: no cover


def _check_range(value: Any, meta: Any, key: str) -> None:
    if isinstance(value, tuple):  # a list setting: every element is in range
        for i, v in enumerate(value):
            _check_range(v, meta, f"{key}[{i}]")
        return
    if value is None or not meta or not isinstance(value, (int, float)):
        return
    lo, hi, lo_open = meta.get("lo"), meta.get("hi"), meta.get("lo_open")
    # Written as "not inside" so that NaN, which fails every comparison, is out of range too.
    if lo is not None and not (value > lo if lo_open else value >= lo):
        raise ConfigError(f"params.yaml: '{key}' must be {'>' if lo_open else '>='} {lo}, got {value}")
    if hi is not None and not value <= hi:
        raise ConfigError(f"params.yaml: '{key}' must be <= {hi}, got {value}")


_COMPUTED = ("sources", "models")


def _build(cls: type, given: Any, key: str, sources: dict, extra_key: Callable[[str, Any], bool] | None = None,
           extra_names: tuple[str, ...] = ()) -> Any:
    """Build dataclass `cls` from params (`given`) over its defaults; `extra_key` admits other keys
    (`extra_names` are offered in "did you mean" hints)."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ConfigError(f"params.yaml: '{key}' must be a mapping, got {type(given).__name__} {given!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name not in _COMPUTED]
    for k in given:
        if k not in names and not (extra_key and extra_key(k, given[k])):
            close = difflib.get_close_matches(str(k), names + list(extra_names), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"params.yaml: unknown key '{key + '.' if key else ''}{k}'{hint}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in _COMPUTED:
            continue
        dotted = f"{key}.{f.name}" if key else f.name
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            kwargs[f.name] = _build(tp, given.get(f.name), dotted, sources)
            continue
        if given.get(f.name) is not None:
            value, src = given[f.name], "params.yaml"
        else:
            value = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            src = "default"
        value = _coerce(value, tp, dotted)
        _check_range(value, f.metadata, dotted)
        kwargs[f.name] = value
        sources[dotted] = src
    return cls(**kwargs)


def _cross_checks(cfg: Config, kinds: Mapping[str, Any]) -> None:
    for name, sec in cfg.models.items():
        lo, hi = getattr(sec, "lr_min", None), getattr(sec, "lr_max", None)
        if lo is not None and hi is not None and lo > hi:
            raise ConfigError(f"params.yaml: '{name}.lr_min' ({lo}) must be <= '{name}.lr_max' ({hi})")
        kinds[name].validate(cfg)
    if not cfg.seeds:
        raise ConfigError("params.yaml: 'seeds' must list at least one seed")
    repeated = next((s for i, s in enumerate(cfg.seeds) if s in cfg.seeds[:i]), None)
    if repeated is not None:  # one run directory per seed: a repeat would train it twice
        raise ConfigError(f"params.yaml: 'seeds' lists seed {repeated} more than once")
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


def from_dict(params: dict | None, kinds: Mapping[str, Any] | None = None) -> Config:
    """Validate params into a Config. `kinds` (name -> model kind, e.g. `streamguard.kinds.registry()`)
    adds one section per model kind; without it the model sections are not read (the prepare stage
    reads none), and only their being mappings is checked."""
    params = dict(params or {})
    sources: dict[str, str] = {}
    if kinds is None:
        extra = lambda key, value: value is None or isinstance(value, dict)  # noqa: E731
    else:
        extra = lambda key, value: key in kinds  # noqa: E731
    cfg = _build(Config, params, "", sources, extra, tuple(kinds or ()))
    models = {name: _build(kind.section, params.get(name), name, sources) for name, kind in (kinds or {}).items()}
    cfg = dataclasses.replace(cfg, models=models, sources=sources)
    _cross_checks(cfg, kinds or {})
    return cfg


def apply_overrides(params: dict, overrides: dict) -> dict:
    """params with dotted-key overrides set (`{"gnn.epochs": 2}`), as `dvc exp run -S` would; params is changed in place."""
    for dotted, value in overrides.items():
        node = params
        *parents, leaf = dotted.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):  # absent, or an empty section (None)
                node[part] = {}
            node = node[part]
        node[leaf] = value
    return params


CONF_DIR = "conf"


def compose_params(overrides: dict | list[str] | None = None, conf_dir: str | pathlib.Path = CONF_DIR) -> dict:
    """params.yaml's content as `dvc exp run -S ...` composes it (Hydra) from conf_dir.

    `overrides` are Hydra overrides (`["profile=production", "seed=7"]`) or a dict of dotted keys.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(overrides, dict):
        overrides = [f"{k}={_hydra_value(v)}" for k, v in overrides.items()]
    conf = pathlib.Path(conf_dir).resolve()
    if not (conf / "config.yaml").is_file():
        raise ConfigError(f"{conf / 'config.yaml'}: file not found (run from the project root)")
    try:
        with initialize_config_dir(str(conf), version_base=None):
            composed = compose(config_name="config", overrides=list(overrides or []))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"{conf}: cannot compose params ({str(exc).splitlines()[0]})") from None
    return OmegaConf.to_container(composed, resolve=True)


def _hydra_value(value: Any) -> str:
    """A Python value in Hydra's override grammar (YAML flow style: lists, mappings, null)."""
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def write_params(path: str | pathlib.Path, params: dict) -> None:
    """Write params.yaml as DVC's Hydra composition does (OmegaConf's YAML), atomically."""
    from omegaconf import OmegaConf

    from .io import write_text_atomic

    write_text_atomic(path, OmegaConf.to_yaml(OmegaConf.create(params)))


def load_config(path: str | pathlib.Path = "params.yaml", overrides: dict | None = None,
                kinds: Mapping[str, Any] | None = None) -> Config:
    """Read and validate params.yaml. `overrides` maps dotted keys to values (tests, CLI); `kinds` as in from_dict."""
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
    params = apply_overrides(params, overrides or {})
    return from_dict(params, kinds)
