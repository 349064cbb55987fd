"""A bundle's model applied to many functions at once: batched across files, graphs in a process pool."""
from __future__ import annotations

from typing import Sequence

import torch
from torch_geometric.data import Batch, Data

from ..bundle import Bundle
from ..data.datasets import pad_tokens, split_windows
from ..kinds import get_kind

ENCODE_CHUNK = 2048  # functions encoded at a time: bounds the graphs held in memory


class Detector:
    """Probability of being vulnerable for function codes, exactly as the bundle's model scores them."""

    def __init__(self, bundle: Bundle, batch_size: int = 64, workers: int | None = None, min_parallel: int = 256):
        self.bundle = bundle
        self.kind = get_kind(bundle.kind)
        self.batch_size, self.workers, self.min_parallel = batch_size, workers, min_parallel
        self.lexical = "lexical" in self.kind.inputs and bundle.encoder.has_lexical

    @torch.inference_mode()
    def _forward(self, ids: Sequence[torch.Tensor], tensors: Sequence[dict], lexical: torch.Tensor | None) -> list[float]:
        encoder = self.bundle.encoder
        tokens = pad_tokens([split_windows(i, encoder.window) for i in ids], encoder.meta["pad_id"])
        graph = Batch.from_data_list([Data(**g, num_nodes=g["x_kind"].shape[0]) for g in tensors])
        logits = self.bundle.model(self.kind.batch(tokens, graph, lexical))
        return torch.sigmoid(logits.float()).tolist()

    def score(self, codes: Sequence[str], tags_from: Sequence[str | None] | None = None) -> tuple[list[float], list[bool]]:
        """-> (probabilities, parse_ok) in the order of `codes`; `tags_from`: see `FunctionEncoder.encode_many`."""
        probs: list[float] = [0.0] * len(codes)
        parse_ok: list[bool] = [True] * len(codes)
        for start in range(0, len(codes), ENCODE_CHUNK):
            chunk = list(codes[start:start + ENCODE_CHUNK])
            origins = list(tags_from[start:start + ENCODE_CHUNK]) if tags_from is not None else None
            ids, tensors, graphs = self.bundle.encoder.encode_many(chunk, self.workers, self.min_parallel, origins)
            lexical = self.bundle.encoder.lexical_logits(chunk) if self.lexical else None
            # Similar lengths share a batch: far less padding for the transformer.
            order = sorted(range(len(chunk)), key=lambda i: ids[i].shape[-1])
            for b in range(0, len(order), self.batch_size):
                rows = order[b:b + self.batch_size]
                lex = lexical[rows] if lexical is not None else None
                for i, p in zip(rows, self._forward([ids[i] for i in rows], [tensors[i] for i in rows], lex)):
                    probs[start + i] = p
            for i, g in enumerate(graphs):
                parse_ok[start + i] = g.parse_ok
        return probs, parse_ok
