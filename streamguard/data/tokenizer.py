"""Tokenizers: a byte-level BPE trained on the train split, or a pretrained model's tokenizer.

Both end up as a Hugging Face fast tokenizer saved with `save_pretrained`, so training, the LR finder
and `streamguard scan` load either kind the same way (`load_tokenizer`).
"""
from __future__ import annotations

import bisect
import pathlib
import re
from typing import Iterable, Sequence

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from ..errors import StreamGuardError, pretrained_unavailable

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>", "<mask>"]
_NEWLINE = re.compile("\n")


def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE (no unknown bytes possible), trained on `texts` only."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", bos), ("</s>", eos)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", mask_token="<mask>", model_max_length=1_000_000)


def load_tokenizer(name_or_path: str | pathlib.Path) -> PreTrainedTokenizerFast:
    """A saved tokenizer directory, a local pretrained model, or a hub id."""
    try:
        tok = AutoTokenizer.from_pretrained(str(name_or_path), use_fast=True)
    except Exception as exc:
        raise pretrained_unavailable(name_or_path, "tokenizer", exc) from None
    if not tok.is_fast:
        raise StreamGuardError(f"{name_or_path}: a fast (Rust) tokenizer is required")
    if tok.pad_token is None:  # e.g. GPT-style tokenizers
        tok.pad_token = tok.eos_token or tok.unk_token
    tok.model_max_length = 1_000_000  # we truncate ourselves and report the rate
    return tok


def _encode(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> list:
    return tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=True)


def token_tags(code: str, encoding, line_tags: dict[int, int]) -> list[int]:
    """Each token's tag: that of the line its first character is on (special tokens: 0)."""
    newlines = [m.start() for m in _NEWLINE.finditer(code)]
    return [0 if special else line_tags.get(bisect.bisect_left(newlines, start) + 1, 0)
            for (start, _end), special in zip(encoding.offsets, encoding.special_tokens_mask)]


def encode_split(tokenizer: PreTrainedTokenizerFast, codes: list[str], labels: list[int], max_length: int,
                 line_tags: Sequence[dict[int, int]] | None = None) -> dict:
    """Token ids of every function as one flat tensor plus lengths (dynamic padding happens per batch).

    Longer sequences keep their first `max_length - 1` tokens and the end token. Only a prefix of each
    function is tokenized (tokens are rarely longer than a few characters), which makes encoding
    several times faster on long functions; a prefix that still falls short is re-encoded in full.
    With `line_tags` (per function, line -> tag) `flow_tags` (uint8, parallel to `input_ids`) holds
    each token's tag (`token_tags`).
    """
    cut = max_length * 8
    encoded = _encode(tokenizer, [c[:cut] for c in codes])
    short = [i for i, c in enumerate(codes) if len(c) > cut and len(encoded[i]) < max_length + 16]
    for i, encoding in zip(short, _encode(tokenizer, [codes[i] for i in short])):
        encoded[i] = encoding
    re_encoded = set(short)
    was_cut = [len(c) > cut and i not in re_encoded for i, c in enumerate(codes)]
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    truncated = 0
    chunks, tag_chunks = [], []
    for i, (encoding, cut_text) in enumerate(zip(encoded, was_cut)):
        ids = encoding.ids
        tags = token_tags(codes[i], encoding, line_tags[i]) if line_tags is not None else None
        if len(ids) > max_length or cut_text:
            truncated += 1
            ids = ids[: max_length - 1] + ([eos] if eos is not None else [ids[max_length - 1]])
            tags = tags[: max_length - 1] + [0] if tags is not None else None
        chunks.append(torch.tensor(ids, dtype=torch.int32))
        if tags is not None:
            tag_chunks.append(torch.tensor(tags, dtype=torch.uint8))
    lengths = torch.tensor([len(c) for c in chunks], dtype=torch.int64)
    out = {
        "input_ids": torch.cat(chunks) if chunks else torch.zeros(0, dtype=torch.int32),
        "lengths": lengths,
        "labels": torch.tensor(labels, dtype=torch.int64),
        "n_truncated": torch.tensor(truncated),
    }
    if line_tags is not None:
        out["flow_tags"] = torch.cat(tag_chunks) if tag_chunks else torch.zeros(0, dtype=torch.uint8)
    return out


def function_tokens(packed: dict, start: int, length: int) -> torch.Tensor:
    """One function's tokens from flat tensors: ids `[L]`, or ids and flow tags stacked `[2, L]`."""
    ids = packed["input_ids"][start:start + length].long()
    if "flow_tags" not in packed:
        return ids
    return torch.stack([ids, packed["flow_tags"][start:start + length].long()])


def window_layout(meta: dict) -> tuple[int, int | None]:
    """(tokens kept per function, window length) from prepare_meta.json; the window is None when every
    function is one sequence (max_windows 1, or data prepared before windows existed)."""
    length, windows = int(meta["max_length"]), int(meta.get("max_windows", 1))
    return length * windows, (length if windows > 1 else None)


def token_offsets(lengths: torch.Tensor) -> torch.Tensor:
    """Start offset of each sequence in the flat id tensor."""
    return torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(lengths, 0)[:-1]])
