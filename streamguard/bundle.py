"""Model bundles: one trained run as a self-contained directory that `streamguard scan` loads anywhere.

    export_bundle(run_dir, processed, out) -> Path      a finished run -> bundle directory
    load_bundle(path) -> Bundle                         refuses a bundle it cannot trust, in one line

Layout (every file is JSON, the tokenizer's own files, or safetensors: loading unpickles nothing):

    config.json          format, versions, model kind/seed/spec, threshold and its policy, test and
                         validation metrics, dataset hash, training config, sha256 of every other file
    model.safetensors    the run's best weights
    prepare_meta.json    the encoder's settings (max_length, max_nodes, max_stmt_tokens, pad_id, language)
    graph_vocab.json     the graph feature vocabulary (train split)
    tokenizer/           the Hugging Face fast tokenizer (tokenizer.json + its config)
    lexical/             for a model that reads the lexical view: the TF-IDF vocabulary and the
                         idf / LR weights (vocabulary.json, weights.safetensors; data/lexical.py)

A transformer branch that was fine-tuned from a pretrained checkpoint is stored by its architecture
config (`hf_config` in the spec), so the bundle never needs the checkpoint path or the hub again.
"""
from __future__ import annotations

import dataclasses
import hashlib
import pathlib
import shutil
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .data.lexical import DIR as LEXICAL_DIR, VOCAB_FILE, WEIGHTS_FILE as LEXICAL_WEIGHTS
from .data.encoder import FunctionEncoder
from .errors import StreamGuardError
from .io import read_json, write_json_atomic
from .kinds import build_model, get_kind, kind_names
from .train.checkpoint import CHECKPOINT_FILE, load_best_weights, load_model_spec
from .train.outputs import library_versions

BUNDLE_FORMAT = "streamguard-bundle"
BUNDLE_VERSION = 1  # bump when a reader of the old layout would misread the new one
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
ENCODER_FILES = ("prepare_meta.json", "graph_vocab.json")
LEXICAL_FILES = (f"{LEXICAL_DIR}/{VOCAB_FILE}", f"{LEXICAL_DIR}/{LEXICAL_WEIGHTS}")


class BundleError(StreamGuardError):
    """A bundle is missing a part, is corrupt or was written by an incompatible version."""


@dataclasses.dataclass
class Bundle:
    path: pathlib.Path
    config: dict[str, Any]
    model: torch.nn.Module
    encoder: FunctionEncoder

    @property
    def kind(self) -> str:
        return self.config["model"]["kind"]

    @property
    def threshold(self) -> float:
        return float(self.config["threshold"]["value"])

    @property
    def language(self) -> str:
        return self.encoder.language


def _sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _portable_spec(spec: Any, model: torch.nn.Module) -> Any:
    """The spec with every pretrained transformer branch replaced by its architecture config."""
    if isinstance(spec, dict):
        out = {k: _portable_spec(v, model) for k, v in spec.items()}
        if out.get("pretrained"):
            from transformers import PreTrainedModel

            encoders = [m for m in model.modules() if isinstance(m, PreTrainedModel)]
            if len(encoders) != 1:
                raise BundleError(f"cannot export: expected one pretrained encoder in the model, found {len(encoders)}")
            out["hf_config"] = encoders[0].config.to_dict()
            out["pretrained"] = None
        return out
    return spec


def export_bundle(run_dir: str | pathlib.Path, processed: str | pathlib.Path, out: str | pathlib.Path) -> pathlib.Path:
    """Write the run in `run_dir` (trained on `processed`) as a bundle directory `out` (replaced atomically)."""
    run_dir, processed, out = pathlib.Path(run_dir), pathlib.Path(processed), pathlib.Path(out)
    metrics_path, meta_path = run_dir / "metrics.json", run_dir / "training_metadata.json"
    for p in (metrics_path, meta_path, run_dir / CHECKPOINT_FILE):
        if not p.exists():
            raise BundleError(f"{p}: not found; train this run first (dvc repro)")
    metrics, meta = read_json(metrics_path), read_json(meta_path)
    if metrics.get("status") != "ok":
        raise BundleError(f"{metrics_path}: the run's status is {metrics.get('status')!r}; only a finished ('ok') run can be exported")
    prepare_meta = read_json(processed / "prepare_meta.json")
    spec = load_model_spec(run_dir / CHECKPOINT_FILE)
    weights = load_best_weights(run_dir / CHECKPOINT_FILE)
    model = build_model(spec)
    model.load_state_dict(weights)
    train_cfg = meta.get("config", {}).get("train", {})
    config = {
        "format": BUNDLE_FORMAT, "format_version": BUNDLE_VERSION, "streamguard_version": __version__,
        "versions": library_versions(),
        "model": {"kind": spec["kind"], "seed": metrics.get("seed"), "spec": _portable_spec(spec, model)},
        "language": prepare_meta.get("language", "c"),
        "threshold": {"value": metrics["threshold"] if metrics.get("threshold") is not None else 0.5,
                      "policy": train_cfg.get("threshold_policy"), "target_fpr": train_cfg.get("target_fpr")},
        "metrics": {"test": metrics.get("test"), "val": metrics.get("val")},
        "dataset_hash": meta.get("dataset_hash"),
        "training": meta.get("config"),
    }
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    # Contiguous copies: safetensors refuses views and tensors that share memory.
    save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, str(tmp / WEIGHTS_FILE))
    for name in ENCODER_FILES:
        shutil.copyfile(processed / name, tmp / name)
    shutil.copytree(processed / "tokenizer", tmp / "tokenizer")
    if _reads_lexical(spec):
        (tmp / LEXICAL_DIR).mkdir()
        for name in LEXICAL_FILES:
            if not (processed / name).is_file():
                raise BundleError(f"{processed / name}: not found; the model reads the lexical view, re-run prepare")
            shutil.copyfile(processed / name, tmp / name)
    config["files"] = {p.relative_to(tmp).as_posix(): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
    write_json_atomic(tmp / CONFIG_FILE, config)
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return out


def _reads_lexical(spec: Any) -> bool:
    return isinstance(spec, dict) and bool(spec.get("lexical"))


def _check_config(path: pathlib.Path, config: Any) -> None:
    if not isinstance(config, dict) or config.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path}: not a StreamGuard bundle (field 'format' is not {BUNDLE_FORMAT!r})")
    version = config.get("format_version")
    if not isinstance(version, int) or version > BUNDLE_VERSION or version < 1:
        raise BundleError(f"{path}: bundle format_version {version!r} is not readable by StreamGuard {__version__} "
                          f"(reads 1..{BUNDLE_VERSION}); export it again with this version")
    for field in ("model", "threshold", "files"):
        if not isinstance(config.get(field), dict):
            raise BundleError(f"{path}: field '{field}' is missing")
    kind = config["model"].get("kind")
    if kind not in kind_names():
        raise BundleError(f"{path}: model kind {kind!r} is not known to this StreamGuard ({', '.join(kind_names())})")
    value = config["threshold"].get("value")
    if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise BundleError(f"{path}: field 'threshold.value' must be a probability, got {value!r}")


def load_bundle(path: str | pathlib.Path) -> Bundle:
    """Load and verify a bundle directory; any missing, altered or incompatible part -> BundleError."""
    root = pathlib.Path(path)
    cfg_path = root / CONFIG_FILE
    if not root.is_dir():
        raise BundleError(f"{root}: no bundle directory here; create one with `streamguard export` (or dvc repro)")
    if not cfg_path.exists():
        raise BundleError(f"{cfg_path}: missing; {root} is not a complete bundle")
    try:
        config = read_json(cfg_path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"{cfg_path}: not valid JSON ({str(exc).splitlines()[0]})") from None
    _check_config(cfg_path, config)
    for rel, digest in config["files"].items():
        part = root / rel
        if not part.is_file():
            raise BundleError(f"{part}: missing from the bundle")
        if _sha256(part) != digest:
            raise BundleError(f"{part}: content differs from the sha256 recorded in {cfg_path} (altered or corrupt)")
    lexical = LEXICAL_FILES if _reads_lexical(config["model"].get("spec")) else ()
    for required in (WEIGHTS_FILE, *ENCODER_FILES, "tokenizer/tokenizer.json", *lexical):
        if required not in config["files"]:
            raise BundleError(f"{cfg_path}: field 'files' does not list {required!r}; the bundle is incomplete")
    try:
        weights = load_file(str(root / WEIGHTS_FILE))
    except (SafetensorError, OSError) as exc:
        raise BundleError(f"{root / WEIGHTS_FILE}: unreadable ({str(exc).splitlines()[0]})") from None
    model = get_kind(config["model"]["kind"]).build(config["model"]["spec"])
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise BundleError(f"{root / WEIGHTS_FILE}: weights do not fit the model spec in {cfg_path} "
                          f"({len(missing)} missing, {len(unexpected)} unexpected, e.g. {(missing or unexpected)[0]!r})")
    model.eval()
    return Bundle(root, config, model, FunctionEncoder(root))


def bundle_summary(bundle: Bundle) -> str:
    c = bundle.config
    test = (c.get("metrics") or {}).get("test") or {}
    auc = test.get("roc_auc")
    return (f"{c['model']['kind']} seed {c['model']['seed']}, {bundle.language}, threshold {bundle.threshold:.3f} "
            f"({c['threshold'].get('policy')}), test ROC-AUC {'n/a' if auc is None else f'{auc:.3f}'}")


def best_seed(summary_dir: str | pathlib.Path, kind: str) -> int:
    """The summary's best seed for a model kind (aggregate stage); 42 when there is no summary yet."""
    summary = pathlib.Path(summary_dir) / "production_summary.json"
    if summary.exists():
        best = read_json(summary).get("models", {}).get(get_kind(kind).output_dir, {}).get("best_seed")
        if isinstance(best, int):
            return best
    return 42


def export_run(kind: str, seed: int | None, outputs: str | pathlib.Path, processed: str | pathlib.Path,
               out: str | pathlib.Path, summary_dir: str | pathlib.Path | None = None) -> pathlib.Path:
    """`streamguard export`: the run of `kind` and `seed` (default: the summary's best) as a bundle."""
    summary_dir = pathlib.Path(outputs) / "production_summary" if summary_dir is None else summary_dir
    seed = best_seed(summary_dir, kind) if seed is None else seed
    return export_bundle(pathlib.Path(outputs) / get_kind(kind).output_dir / f"seed_{seed}", processed, out)
