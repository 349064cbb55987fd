"""Torch datasets over data/processed: token sequences, graphs, and both joined for fusion.

Token batches use dynamic padding (pad to the longest sequence in the batch) and length-grouped
batches (similar lengths together), so little compute goes to padding.

A function's tokens are its ids `[L]`, or, where prepare wrote flow tags (`tokenizer.flow_tags`), ids
and tags stacked `[2, L]`; a batch then also holds `flow_tags` `[B, L]` (0 on padding).
With `tokenizer.max_windows` > 1 a function's tokens come as a tuple of consecutive windows of
`max_length` tokens; a batch then has one row per window and `window_owner` (the function of each
row), and the transformer pools a function's windows into one embedding.
"""
from __future__ import annotations

import pathlib
from typing import Iterator, Sequence

import torch
from torch.utils.data import Dataset, Sampler
from torch_geometric.data import Batch

from ..graphs.features import FLOW_TAG_VALUES
from ..graphs.store import GraphStore
from ..errors import DataError
from ..io import load_torch, read_json
from .lexical import DIR as LEXICAL_DIR, load_logits
from .splits import read_split
from .tokenizer import function_tokens, load_tokenizer, token_offsets, window_layout

Tokens = torch.Tensor | tuple[torch.Tensor, ...]  # one function: its tokens, or its windows' tokens


def split_windows(tokens: torch.Tensor, window: int | None) -> Tokens:
    """One function's tokens as its consecutive windows (a tuple), or unchanged without windows."""
    return tokens if window is None else tuple(tokens.split(window, dim=-1))


def token_ids(row: torch.Tensor) -> torch.Tensor:
    """The ids `[L]` of one sequence, with or without flow tags."""
    return row[0] if row.dim() == 2 else row


def token_rows(seqs: Sequence[Tokens]) -> list[torch.Tensor]:
    """A batch's sequences: one per window of a windowed function, one per function otherwise."""
    return [w for s in seqs for w in (s if isinstance(s, tuple) else (s,))]


class TokenDataset(Dataset):
    """Item i -> (tokens LongTensor [L_i] or [2, L_i], label), or (tuple of windows, label) with `window`."""

    def __init__(self, packed: dict, window: int | None = None):
        self.packed = packed
        self.ids = packed["input_ids"]
        self.lengths = packed["lengths"]
        self.labels = packed["labels"]
        self.offsets = token_offsets(self.lengths)
        self.window = window

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> tuple[Tokens, int]:
        tokens = function_tokens(self.packed, int(self.offsets[i]), int(self.lengths[i]))
        return split_windows(tokens, self.window), int(self.labels[i])


def pad_tokens(seqs: Sequence[Tokens], pad_id: int) -> dict:
    """Pad to the longest sequence (or window) in the batch; windowed functions add `window_owner`."""
    windowed = isinstance(seqs[0], tuple)
    rows = token_rows(seqs)
    tagged = rows[0].dim() == 2
    width = max(s.shape[-1] for s in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    tags = torch.zeros((len(rows), width), dtype=torch.long) if tagged else None
    for row, s in enumerate(rows):
        n = s.shape[-1]
        ids[row, :n] = token_ids(s)
        mask[row, :n] = 1
        if tagged:
            tags[row, :n] = s[1]
    batch = {"input_ids": ids, "attention_mask": mask}
    if tagged:
        batch["flow_tags"] = tags
    if windowed:
        counts = torch.tensor([len(s) for s in seqs])
        batch["window_owner"] = torch.repeat_interleave(torch.arange(len(seqs)), counts)
    return batch


class TokenCollator:
    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, items: list) -> dict:
        seqs, labels = zip(*items)
        return {**pad_tokens(seqs, self.pad_id), "labels": torch.tensor(labels, dtype=torch.long)}


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Batches of similar length, in a seeded random order.

    Each epoch: draw an index order (uniform shuffle, or weighted with replacement when `weights` is
    given, as a balanced sampler), sort each window of `batch_size * window` indices by length, cut
    into batches, shuffle the batches. Deterministic given the generator's state. Without `shuffle`
    (evaluation) batches follow dataset order, so predictions can be indexed by sample.
    """

    def __init__(self, lengths: torch.Tensor, batch_size: int, generator: torch.Generator,
                 weights: torch.Tensor | None = None, window: int = 50, shuffle: bool = True):
        self.lengths = lengths
        self.batch_size = batch_size
        self.generator = generator
        self.weights = weights
        self.window = window
        self.shuffle = shuffle

    def _order(self) -> torch.Tensor:
        n = len(self.lengths)
        if not self.shuffle:
            return torch.arange(n)
        if self.weights is not None:
            return torch.multinomial(self.weights, n, replacement=True, generator=self.generator)
        return torch.randperm(n, generator=self.generator)

    def __iter__(self) -> Iterator[list[int]]:
        order = self._order()
        if not self.shuffle:  # evaluation: dataset order, so predictions line up with sample indices
            return iter([order[i:i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size)])
        span = self.batch_size * self.window
        batches = []
        for start in range(0, len(order), span):
            chunk = order[start:start + span]
            chunk = chunk[torch.argsort(self.lengths[chunk], stable=True)]
            batches.extend(chunk[i:i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size))
        if self.shuffle:
            perm = torch.randperm(len(batches), generator=self.generator).tolist()
            batches = [batches[i] for i in perm]
        return iter(batches)

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size


class FusionDataset(Dataset):
    """Item i -> (ids, graph Data, label[, lexical logit]) for the same function."""

    def __init__(self, tokens: TokenDataset, graphs: GraphStore, lexical: torch.Tensor | None = None):
        for name, n in (("graph", len(graphs)), ("lexical", len(tokens) if lexical is None else len(lexical))):
            if n != len(tokens):
                raise ValueError(f"token and {name} datasets differ in length ({len(tokens)} vs {n})")
        self.tokens, self.graphs, self.lexical = tokens, graphs, lexical
        self.lengths = tokens.lengths
        self.labels = tokens.labels

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int):
        ids, label = self.tokens[i]
        if self.lexical is None:
            return ids, self.graphs[i], label
        return ids, self.graphs[i], label, self.lexical[i]


class FusionCollator:
    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, items: list) -> dict:
        seqs, graphs, labels, *lexical = zip(*items)
        batch = {"tokens": pad_tokens(seqs, self.pad_id), "graph": Batch.from_data_list(list(graphs)),
                 "labels": torch.tensor(labels, dtype=torch.long)}
        if lexical:
            batch["lexical"] = torch.stack(lexical[0]).float()
        return batch


def graph_collate(items: list) -> Batch:
    return Batch.from_data_list(items)


class ProcessedData:
    """Lazy access to one data/processed directory."""

    def __init__(self, root: str | pathlib.Path = "data/processed"):
        self.root = pathlib.Path(root)
        meta = self.root / "prepare_meta.json"
        if not meta.exists():
            raise DataError("not found; run the prepare stage first (dvc repro prepare)", meta)
        self.meta = read_json(meta)
        self.vocab = read_json(self.root / "graph_vocab.json")
        self._cache: dict = {}

    @property
    def pad_id(self) -> int:
        return int(self.meta["pad_id"])

    @property
    def flow_tag_values(self) -> int:
        """How many flow-tag values the token view has (0: prepared without flow tags)."""
        return FLOW_TAG_VALUES if self.meta.get("flow_tags") else 0

    @property
    def window(self) -> int | None:
        """Window length of the token sequences, None when each function is one sequence."""
        return window_layout(self.meta)[1]

    def records(self, split: str, fields: Sequence[str] = ("label",)) -> list[dict]:
        """The split's normalized records (`splits/{split}.jsonl`, see data/splits.py), in tensor order."""
        return [record for _, record in read_split(self.root / "splits" / f"{split}.jsonl", fields)]

    def tokens(self, split: str) -> TokenDataset:
        key = ("tokens", split)
        if key not in self._cache:
            self._cache[key] = TokenDataset(load_torch(self.root / "tokens" / f"{split}.pt"), self.window)
        return self._cache[key]

    def graphs(self, split: str) -> GraphStore:
        key = ("graphs", split)
        if key not in self._cache:
            self._cache[key] = GraphStore(load_torch(self.root / "graphs" / f"{split}.pt"))
        return self._cache[key]

    @property
    def has_lexical(self) -> bool:
        return (self.root / LEXICAL_DIR / "train.npy").exists()

    def lexical(self, split: str) -> torch.Tensor:
        """The lexical view's logits (data/lexical.py), float32 `[n]` in split order."""
        key = ("lexical", split)
        if key not in self._cache:
            self._cache[key] = torch.from_numpy(load_logits(self.root, split)).float()
        return self._cache[key]

    def fusion(self, split: str, lexical: bool = False) -> FusionDataset:
        return FusionDataset(self.tokens(split), self.graphs(split), self.lexical(split) if lexical else None)

    def vocab_size(self) -> int:
        if "vocab_size" not in self._cache:
            self._cache["vocab_size"] = len(load_tokenizer(self.root / "tokenizer"))
        return self._cache["vocab_size"]
