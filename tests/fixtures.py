"""Shared helpers for tests that need a real, tiny data/processed directory."""
from __future__ import annotations

import pathlib

from streamguard.config import apply_overrides, from_dict
from streamguard.kinds import registry
from streamguard.data.pipeline import prepare

TINY = {
    "data.synthetic.n_functions": 120,
    "tokenizer.vocab_size": 400,
    "tokenizer.max_length": 128,
    "graph.max_nodes": 24,
    "graph.workers": 1,
    "transformer.hidden_size": 32,
    "transformer.num_heads": 2,
    "transformer.intermediate_size": 64,
    "gnn.hidden_size": 32,
    "fusion.hidden_size": 32,
    "fusion.oof_folds": 2,
    "fusion.oof_epochs": 1,
}


def tiny_config(**overrides):
    """A tiny quick-profile config that does not depend on the working params.yaml."""
    return from_dict(apply_overrides({}, {**TINY, **overrides}), kinds=registry())


def predicted_probs(outputs: pathlib.Path, processed: pathlib.Path, model: str, split: str = "test", seed: int = 42):
    """What the engine's predict() gives the saved best weights of a run on a split, in sample order."""
    from streamguard import runs
    from streamguard.data.datasets import ProcessedData
    from streamguard.train.checkpoint import CHECKPOINT_FILE, load_best_weights, load_model_spec
    from streamguard.train.engine import predict

    data = ProcessedData(processed)
    kind = runs.get_kind(model)
    ckpt = runs.run_dir(outputs, model, seed) / CHECKPOINT_FILE
    net = runs.build_model(load_model_spec(ckpt))
    net.load_state_dict(load_best_weights(ckpt))
    loader = runs.make_loaders(kind, {split: kind.dataset(data, split)}, 8, 0, data.pad_id, False)[split]
    return predict(net, loader, "cpu").probs


def make_processed(root: pathlib.Path, **overrides) -> tuple[pathlib.Path, object]:
    cfg = tiny_config(**overrides)
    out = root / "processed"
    prepare(cfg, out)
    return out, cfg
