"""The pretrain stage's work: masked-token pretraining of the transformer's trunk, and reading it back.

Pretraining reads the training split's token sequences only (never valid or test code), plus the
functions of `pretrain.corpus` when set (data/corpus.py drops those equal to a valid or test function); the valid
split's masked-token loss and accuracy are measured each epoch, with the same masks every time. The
result, `{paths.pretrain}/`, holds `trunk.safetensors` (the stem + encoder weights) and
`pretrain.json` (status, the trunk's architecture spec, settings, per-epoch history, sha256 of the
weights). With `pretrain.enabled: false`, or with `transformer.pretrained` set (that checkpoint is the
starting point), the stage writes only `pretrain.json` with `status: skipped` and the reason.

After every epoch the unfinished run's state (weights, optimizer, schedule, scaler, history, RNG) is
saved as `pretrain_state.pt` in the out directory; a later run with the same inputs resumes after that
epoch and writes the same bytes as an uninterrupted one (each epoch's batch order and masks come from
its own seed), and a finished run removes the file. A state saved for other inputs is discarded.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import pathlib
import shutil
from typing import Any, NamedTuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors, save as save_safetensors
from transformers import DataCollatorForLanguageModeling

from ..config import Config
from ..data.corpus import read_corpus
from ..data.datasets import LengthGroupedBatchSampler, ProcessedData, TokenDataset, token_ids, token_rows
from ..data.identity import dataset_hash
from ..data.tokenizer import encode_split, load_tokenizer, window_layout
from ..errors import CorruptFileError, StreamGuardError
from ..io import atomic_write, load_torch, read_json, save_torch_atomic, write_json_atomic
from ..kinds import get_kind
from ..models.mlm import MaskedLM, trunk_state
from ..train.amp import Amp, resolve_amp
from ..train.batches import batch_to_device, make_loader, resolve_device
from ..train.optim import build_optimizer, build_scheduler, scheduler_step
from ..train.seeding import capture_rng_state, make_generator, restore_rng_state, seed_everything

log = logging.getLogger("streamguard.runs")

WEIGHTS_FILE = "trunk.safetensors"
META_FILE = "pretrain.json"
STATE_FILE = "pretrain_state.pt"  # an unfinished run's state, resumed by the next run with the same inputs
KIND = "transformer"  # the kind whose trunk is pretrained


class Trunk(NamedTuple):
    """Pretrained trunk weights and the sha256 of their file (recorded by every run that starts from them)."""
    state: dict[str, torch.Tensor]
    sha256: str


class _Masking:
    """Token items -> padded, masked batches (Hugging Face's MLM collator: 80 % <mask>, 10 % random, 10 % kept)."""

    def __init__(self, tokenizer, mask_prob: float, seed: int):
        self.collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mask_prob, seed=seed)

    def __call__(self, items: list) -> dict:
        # Each window of a windowed function is a sequence of its own; flow tags are not masked-token
        # targets and stay out (the trunk learns from the code alone).
        rows = token_rows([tokens for tokens, _label in items])
        return self.collator([{"input_ids": token_ids(row)} for row in rows])


def _with_corpus(cfg: Config, data: ProcessedData, tokenizer) -> tuple[TokenDataset, dict | None]:
    """The training split's sequences, plus the corpus's functions (`pretrain.corpus`) when one is set."""
    train = data.tokens("train")
    if not cfg.pretrain.corpus:
        return train, None
    held_out = [rec["code"] for split in ("valid", "test") for rec in data.records(split, ("code",))]
    codes, stats = read_corpus(cfg.pretrain.corpus, cfg.graph.language, held_out, cfg.data.max_code_chars)
    extra = encode_split(tokenizer, codes, [0] * len(codes), window_layout(data.meta)[0])
    joined = {"input_ids": torch.cat([train.ids, extra["input_ids"].to(train.ids.dtype)]),
              "lengths": torch.cat([train.lengths, extra["lengths"]]),
              "labels": torch.cat([train.labels, extra["labels"]])}
    log.info("pretrain corpus %s: %d functions from %d files (%d dropped: equal to a valid or test function)",
             cfg.pretrain.corpus, stats.functions, stats.files, stats.dropped_in_valid_or_test)
    return TokenDataset(joined, data.window), stats.to_dict()


def _loader(ds: TokenDataset, tokenizer, cfg: Config, seed: int, shuffle: bool):
    pc = cfg.pretrain
    sampler = LengthGroupedBatchSampler(ds.lengths, pc.batch_size, make_generator(seed + 17), shuffle=shuffle)
    return make_loader(ds, None, batch_sampler=sampler, seed=seed, collate_fn=_Masking(tokenizer, pc.mask_prob, seed))


def _epoch_seed(seed: int, epoch: int) -> int:
    """Each training epoch's batch order and masks from a seed of its own, so a resumed run draws
    exactly what an uninterrupted one would (valid masks use `seed + 1`)."""
    return seed + 100 + epoch


def _clear(out: pathlib.Path, keep: str | None) -> None:
    """Empty the out directory (one DVC stage's: nothing of an earlier run may stay), sparing `keep`."""
    if not out.exists():
        return
    for path in out.iterdir():
        if path.name == keep:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def _saved_state(out: pathlib.Path, fingerprint: str) -> dict | None:
    """The state an interrupted run with these inputs left in `out`; None when there is none or it
    belongs to other inputs (then it is removed). A file that cannot be read is an error naming it."""
    path = out / STATE_FILE
    if not path.exists():
        return None
    state = load_torch(path)
    if not isinstance(state, dict) or state.get("fingerprint") != fingerprint:
        log.info("pretrain: %s was saved for other inputs; starting over", path)
        path.unlink()
        return None
    log.info("pretrain: resuming after epoch %d of %d (%s)", state["epoch"], state["epochs"], path)
    return state


def _skip_reason(cfg: Config) -> str | None:
    if cfg.transformer.pretrained:
        return "transformer.pretrained is set: the transformer starts from that checkpoint"
    if not cfg.pretrain.enabled:
        return "pretrain.enabled is false"
    return None


@torch.no_grad()
def _evaluate(model: MaskedLM, data, split, tokenizer, cfg, device, amp: Amp) -> dict[str, float]:
    model.eval()
    total = correct = 0.0
    count = 0
    # A fresh loader (and masking generator) per call: every evaluation scores the same masks.
    for batch in _loader(data.tokens(split), tokenizer, cfg, cfg.seed + 1, shuffle=False):
        batch = batch_to_device(batch, device)
        n = int((batch["labels"] != -100).sum())
        with amp.autocast():
            loss, acc = model(batch["input_ids"], batch["attention_mask"], batch["labels"])
        total += float(loss) * n
        correct += float(acc) * n
        count += n
    return {"loss": total / max(count, 1), "accuracy": correct / max(count, 1), "masked_tokens": count}


def pretrain(cfg: Config, processed: str | pathlib.Path, out_dir: str | pathlib.Path) -> dict[str, Any]:
    """Pretrain the configured transformer's trunk on the training split; write `out_dir`; return its pretrain.json."""
    out = pathlib.Path(out_dir)
    reason = _skip_reason(cfg)
    if reason is not None:
        _clear(out, keep=None)
        meta = {"status": "skipped", "reason": reason}
        write_json_atomic(out / META_FILE, meta)
        log.info("pretrain skipped: %s", reason)
        return meta
    pc = cfg.pretrain
    data = ProcessedData(processed)
    tokenizer = load_tokenizer(pathlib.Path(processed) / "tokenizer")
    if tokenizer.mask_token_id is None:
        raise StreamGuardError(f"{pathlib.Path(processed) / 'tokenizer'}: the tokenizer has no mask token; "
                               "masked-token pretraining needs one (or set pretrain.enabled: false)")
    kind = get_kind(KIND)
    spec = kind.spec(cfg, data)
    seed_everything(cfg.seed)
    model = MaskedLM(kind.build(spec))
    device = resolve_device()
    model.to(device)
    amp = Amp(resolve_amp(device, cfg.train.amp))
    train_ds, corpus = _with_corpus(cfg, data, tokenizer)
    fingerprint = json.dumps({"spec": spec[KIND], "settings": dataclasses.asdict(pc), "seed": cfg.seed,
                              "amp": cfg.train.amp, "data": dataset_hash(processed), "corpus": corpus},
                             sort_keys=True)
    state = _saved_state(out, fingerprint)
    _clear(out, keep=STATE_FILE if state else None)
    steps_per_epoch = len(_loader(train_ds, tokenizer, cfg, cfg.seed, shuffle=True))
    optimizer, _ = build_optimizer(model, pc.lr, pc.weight_decay)
    scheduler = build_scheduler(optimizer, pc.epochs * steps_per_epoch, pc.warmup_ratio)
    if state:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        amp.load_state_dict(state["scaler"])
        restore_rng_state(state["rng"])
        history = state["history"]
    else:
        history = [{"epoch": 0, "train_loss": None, "skipped_steps": None, **{f"valid_{k}": v for k, v in
                                                       _evaluate(model, data, "valid", tokenizer, cfg, device, amp).items()}}]
    for epoch in range(len(history), pc.epochs + 1):
        model.train()
        running, steps, skipped = 0.0, 0, 0
        for batch in _loader(train_ds, tokenizer, cfg, _epoch_seed(cfg.seed, epoch), shuffle=True):
            batch = batch_to_device(batch, device)
            with amp.autocast():
                loss, _acc = model(batch["input_ids"], batch["attention_mask"], batch["labels"])
            optimizer.zero_grad(set_to_none=True)
            amp.backward(loss)
            amp.unscale_(optimizer)
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), pc.max_grad_norm)
            loss_v, norm_v = torch.stack([loss.detach().float(), norm.float()]).tolist()  # one host sync
            step_skipped = amp.step_if_finite(optimizer, math.isfinite(loss_v) and math.isfinite(norm_v))
            if step_skipped:
                skipped += 1
            else:
                running, steps = running + loss_v, steps + 1
            scheduler_step(scheduler, step_skipped)
        if not steps:  # nothing learnt, and the next epoch would start from the same state: stop, write nothing
            raise StreamGuardError(f"pretraining diverged: every step of epoch {epoch} had a non-finite loss or "
                                   f"gradient ({skipped} skipped); lower pretrain.lr or set train.amp: off")
        valid = _evaluate(model, data, "valid", tokenizer, cfg, device, amp)
        history.append({"epoch": epoch, "train_loss": running / steps, "skipped_steps": skipped,
                        **{f"valid_{k}": v for k, v in valid.items()}})
        log.info("pretrain epoch %d/%d: train loss %.4f, valid loss %.4f, valid masked accuracy %.3f",
                 epoch, pc.epochs, history[-1]["train_loss"], valid["loss"], valid["accuracy"])
        save_torch_atomic(out / STATE_FILE, {
            "fingerprint": fingerprint, "epoch": epoch, "epochs": pc.epochs, "history": history,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "scaler": amp.state_dict(), "rng": capture_rng_state()})
    blob = save_safetensors({k: v.cpu() for k, v in trunk_state(model.classifier).items()})
    with atomic_write(out / WEIGHTS_FILE, "wb") as fh:
        fh.write(blob)
    meta = {"status": "ok", "kind": KIND, "spec": spec[KIND], "settings": dataclasses.asdict(pc), "seed": cfg.seed,
            "train_functions": len(data.tokens("train")), "corpus": corpus, "history": history,
            "sha256": hashlib.sha256(blob).hexdigest()}
    write_json_atomic(out / META_FILE, meta)
    (out / STATE_FILE).unlink(missing_ok=True)  # finished: the out holds the trunk and its record only
    return meta


def pretrained_trunk(kind, spec: dict, pretrain_dir: str | pathlib.Path | None) -> Trunk | None:
    """The trunk a run of `kind` (with its `spec`) starts from; None for kinds that start from none."""
    if pretrain_dir is None or not kind.starts_from_pretrain:
        return None
    return read_trunk(pretrain_dir, spec[kind.name])


def read_trunk(pretrain_dir: str | pathlib.Path, spec: dict) -> Trunk | None:
    """The trunk the pretrain stage wrote for this transformer spec; None when it skipped pretraining.

    A missing, damaged or altered file, or a trunk pretrained for another architecture, is a one-line
    error naming the file and what to run.
    """
    root = pathlib.Path(pretrain_dir)
    meta_path = root / META_FILE
    if not meta_path.exists():
        raise StreamGuardError(f"{meta_path}: not found; run the pretrain stage first (dvc repro pretrain)")
    meta = read_json(meta_path)
    if meta.get("status") == "skipped":
        return None
    if meta.get("spec") != spec:
        raise StreamGuardError(f"{meta_path}: pretrained for another transformer architecture than params.yaml's; "
                               "re-run the pretrain stage (dvc repro pretrain)")
    path = root / WEIGHTS_FILE
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise StreamGuardError(f"{path}: not found; re-run the pretrain stage (dvc repro pretrain)") from None
    sha = hashlib.sha256(blob).hexdigest()
    if sha != meta.get("sha256"):
        raise CorruptFileError(f"{path}: sha256 differs from {META_FILE}'s; re-run the pretrain stage "
                               "(dvc repro pretrain --force)")
    try:
        state = load_safetensors(blob)
    except SafetensorError as exc:
        raise CorruptFileError(f"{path}: not a readable safetensors file ({exc})") from None
    return Trunk(state, sha)
