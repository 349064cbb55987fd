"""Functions encoded at scan time exactly as prepare encoded the training data.

`FunctionEncoder` reads what prepare wrote (tokenizer, graph vocabulary, `prepare_meta.json`, the
lexical model) and applies the same normalization, tokens, flow tags and statement graphs to new code,
so a bundle scores a function the way its model saw functions in training.
"""
from __future__ import annotations

import pathlib
from typing import Sequence

import torch

from ..errors import DataError
from ..graphs.features import GraphVocab, encode_graphs, line_flow_tags
from ..graphs.languages import LANGUAGES
from ..graphs.parallel import build_graphs
from ..io import read_json
from . import clean
from .datasets import TokenDataset
from .lexical import DIR as LEXICAL_DIR, LexicalModel
from .tokenizer import encode_split, load_tokenizer, window_layout


def moved_line_tags(original: str, variant: str, tags: dict[int, int]) -> dict[int, int] | None:
    """`original`'s line tags on `variant`, the same normalized function with one line taken out (a
    blanked line disappears in normalization, so the lines after it move up one); None when `variant`
    is not `original` less one line."""
    before, after = original.split("\n"), variant.split("\n")
    if after == before:
        return dict(tags)
    if len(after) != len(before) - 1:
        return None
    gone = next((i for i, (a, b) in enumerate(zip(before, after)) if a != b), len(after))  # 0-based
    if before[gone + 1:] != after[gone:]:
        return None
    return {line - (line > gone + 1): tag for line, tag in tags.items() if line != gone + 1}


class FunctionEncoder:
    """Encode single functions exactly as prepare did (same normalization, tokenizer and vocabularies)."""

    def __init__(self, processed_dir: str | pathlib.Path):
        d = pathlib.Path(processed_dir)
        if not (d / "prepare_meta.json").exists():
            raise DataError("not found; run the prepare stage first (dvc repro prepare)", d / "prepare_meta.json")
        self.meta = read_json(d / "prepare_meta.json")
        self.max_tokens, self.window = window_layout(self.meta)
        self.tokenizer = load_tokenizer(d / "tokenizer")
        self.vocab = GraphVocab.from_dict(read_json(d / "graph_vocab.json"))
        self.language = self.meta.get("language", "c")  # data prepared before the setting existed is C
        if self.language not in LANGUAGES:
            raise DataError(f"unknown language {self.language!r} (known: {', '.join(sorted(LANGUAGES))}); "
                            "re-run the prepare stage", d / "prepare_meta.json", field="language")
        self._lexical_dir = d / LEXICAL_DIR
        self._lexical: LexicalModel | None = None

    @property
    def has_lexical(self) -> bool:
        return (self._lexical_dir / "vocabulary.json").exists()

    def lexical_logits(self, codes: list[str]) -> torch.Tensor:
        """The lexical view's logit per function (float32 `[n]`), from the model prepare fit on train."""
        if self._lexical is None:  # loaded on first use: scikit-learn is imported only for models that read it
            self._lexical = LexicalModel.load(self._lexical_dir)
        return torch.from_numpy(self._lexical.logits([clean.normalize_code(c) for c in codes])).float()

    def encode(self, code: str) -> tuple[torch.Tensor, dict, bool]:
        """-> (tokens ([L] ids, or [2, L] with flow tags), encoded graph tensors, parse_ok)."""
        ids, tensors, graphs = self.encode_many([code], workers=1)
        return ids[0], tensors[0], graphs[0].parse_ok

    def encode_many(self, codes: Sequence[str], workers: int | None = None, min_parallel: int = 2000,
                    tags_from: Sequence[str | None] | None = None) -> tuple[list[torch.Tensor], list[dict], list]:
        """Many functions at once (graphs in a process pool when the batch is large) -> (tokens per
        function as `TokenDataset` gives them, encoded graph tensors per function, the StatementGraphs).

        `tags_from[i]`, where given, is the function that `codes[i]` is with one line blanked (an
        occlusion): its tokens then keep that function's flow tags instead of taking their own graph's,
        so blanking a line removes that line's tokens and tag but leaves the flow of the other lines.
        """
        codes = [clean.normalize_code(c) for c in codes]
        graphs = self._graphs(codes, workers, min_parallel)
        line_tags = None
        if self.meta.get("flow_tags"):
            line_tags = [line_flow_tags(graph) for graph in graphs]
            if tags_from is not None:
                line_tags = self._borrowed_tags(codes, line_tags, tags_from, workers, min_parallel)
        enc = encode_split(self.tokenizer, codes, [0] * len(codes), self.max_tokens, line_tags)
        ids = [tokens for tokens, _ in TokenDataset(enc)]
        backend = self.tokenizer.backend_tokenizer
        tensors = encode_graphs(graphs, self.vocab, lambda t: backend.encode(t, add_special_tokens=False).ids,
                                self.meta["max_stmt_tokens"], pad_id=self.meta["pad_id"])
        return ids, tensors, graphs

    def _graphs(self, codes: list[str], workers: int | None, min_parallel: int) -> list:
        """Statement graphs of normalized functions, with prepare's node cap and language."""
        return build_graphs(codes, self.meta["max_nodes"], workers=workers, min_parallel=min_parallel,
                            language=self.language, progress=False)

    def _borrowed_tags(self, codes: list[str], own: list[dict[int, int]], tags_from: Sequence[str | None],
                       workers: int | None, min_parallel: int) -> list[dict[int, int]]:
        if len(tags_from) != len(codes):
            raise ValueError(f"tags_from has {len(tags_from)} entries for {len(codes)} functions")
        normalized = {c: clean.normalize_code(c) for c in set(tags_from) if c is not None}
        originals = sorted(set(normalized.values()))
        graphs = self._graphs(originals, workers, min_parallel)
        tags_of = {code: line_flow_tags(graph) for code, graph in zip(originals, graphs)}
        out = []
        for code, tags, origin in zip(codes, own, tags_from):
            moved = None
            if origin is not None:
                moved = moved_line_tags(normalized[origin], code, tags_of[normalized[origin]])
            out.append(tags if moved is None else moved)
        return out
