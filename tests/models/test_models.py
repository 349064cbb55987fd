import ast
import json
import os
import subprocess
import sys

import pytest
import torch
from transformers import RobertaConfig, RobertaModel

from streamguard.data.datasets import FusionCollator, ProcessedData, TokenCollator, graph_collate, split_windows
from streamguard.kinds import build_model, get_kind
from streamguard.models.transformer import build_encoder
from streamguard.train.engine import LoopConfig, RunInfo, Trainer, make_loader
from streamguard.train.losses import make_loss
from streamguard.train.seeding import seed_everything

from ..fixtures import make_processed


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    path, cfg = make_processed(tmp_path_factory.mktemp("models"))
    return ProcessedData(path), cfg


def _batch(kind, data, n=6):
    if kind == "transformer":
        return TokenCollator(data.pad_id)([data.tokens("train")[i] for i in range(n)])
    if kind == "gnn":
        return graph_collate([data.graphs("train")[i] for i in range(n)])
    return FusionCollator(data.pad_id)([get_kind("fusion").dataset(data, "train")[i] for i in range(n)])


@pytest.mark.parametrize("kind", ["transformer", "gnn", "fusion"])
def test_models_map_a_real_batch_to_one_logit_each(processed, kind):
    data, cfg = processed
    model = build_model(get_kind(kind).spec(cfg, data))
    logits = model(_batch(kind, data))
    assert logits.shape == (6,) and torch.isfinite(logits).all()
    assert model.encode(_batch(kind, data)).shape == (6, model.out_dim)


@pytest.mark.parametrize("conv", ["rgcn", "gine", "ggnn"])
@pytest.mark.parametrize("pooling", ["attention", "meanmax"])
def test_gnn_variants(processed, conv, pooling):
    data, cfg = processed
    spec = get_kind("gnn").spec(cfg, data)
    spec["gnn"].update(conv=conv, pooling=pooling)
    logits = build_model(spec)(_batch("gnn", data))
    assert logits.shape == (6,) and torch.isfinite(logits).all()


def test_transformer_stem_numbers_positions_as_the_plain_encoder_does(processed):
    """With the stem's output zeroed, the inputs_embeds path gives the input_ids path's states (padding included)."""
    data, cfg = processed
    model = build_model(get_kind("transformer").spec(cfg, data)).eval()
    assert model.conv is not None and model.pooling == "max"  # the quick profile's transformer
    torch.nn.init.zeros_(model.conv.weight)
    torch.nn.init.zeros_(model.conv.bias)
    items = [data.tokens("train")[i] for i in range(4)]
    items[1] = (items[1][0][..., :20], items[1][1])  # a short function: the batch has padding
    batch = TokenCollator(data.pad_id)(items)
    assert (batch["attention_mask"] == 0).any()
    with torch.no_grad():
        stem = model.states(batch["input_ids"], batch["attention_mask"])
        plain = model.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    keep = batch["attention_mask"].bool()
    assert torch.allclose(stem[keep], plain[keep], atol=1e-5)


def test_flow_tags_are_embedded_next_to_the_tokens(processed):
    """Prepare's flow tags reach the model: a tag table of zeros gives the untagged states, and a
    token whose tag changes changes the function's embedding."""
    data, cfg = processed
    spec = get_kind("transformer").spec(cfg, data)
    assert spec["transformer"]["flow_tags"] == 16  # four flags, every combination
    model = build_model(spec).eval()
    batch = _batch("transformer", data, n=4)
    tags = batch["flow_tags"]
    assert tags.shape == batch["input_ids"].shape and tags.any() and not tags[batch["attention_mask"] == 0].any()
    with torch.no_grad():
        tagged = model.encode(batch)
        untagged = model.encode({k: v for k, v in batch.items() if k != "flow_tags"})
        assert not torch.allclose(tagged, untagged)
        flipped = dict(batch, flow_tags=tags.clone())
        flipped["flow_tags"][0, 1] = 15 - int(tags[0, 1])
        assert not torch.allclose(model.encode(flipped)[0], tagged[0]) and torch.equal(model.encode(flipped)[1:], tagged[1:])
        torch.nn.init.zeros_(model.tag_embeddings.weight)
        assert torch.allclose(model.encode(batch), untagged, atol=1e-6)
    spec["transformer"]["flow_tags"] = 0  # data prepared without tags: no table, tags ignored
    assert build_model(spec).tag_embeddings is None


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_windowed_batches_pool_a_functions_windows_into_one_embedding(processed, pooling):
    """Windows encode separately; pooling over a function's windows equals pooling over the
    concatenation of their token states (what a one-window function gets)."""
    data, cfg = processed
    spec = get_kind("transformer").spec(cfg, data)
    spec["transformer"]["pooling"] = pooling
    model = build_model(spec).eval()
    items = [data.tokens("train")[i] for i in range(3)]
    windows = [split_windows(tokens, 8) for tokens, _ in items]
    batch = TokenCollator(data.pad_id)([(w, label) for w, (_, label) in zip(windows, items)])
    assert batch["window_owner"].max() == 2 and len(batch["window_owner"]) > 3
    with torch.no_grad():
        pooled = model.encode(batch)
        states = model.states(batch["input_ids"], batch["attention_mask"], batch["flow_tags"])
    mask = batch["attention_mask"].bool()
    for f in range(3):
        rows = batch["window_owner"] == f
        tokens = states[rows][mask[rows]]  # this function's token states, every window
        expected = tokens.max(0).values if pooling == "max" else tokens.mean(0)
        torch.testing.assert_close(pooled[f], expected)
    assert model(batch).shape == (3,)


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_gnn_embedding_norm_before_the_head_trains_even_on_a_one_graph_batch(processed, norm):
    data, cfg = processed
    spec = get_kind("gnn").spec(cfg, data)
    spec["gnn"]["embed_norm"] = norm
    model = build_model(spec).train()
    emb = model.encode(_batch("gnn", data))
    # normalised per feature over the batch (batch) or per graph over its features (layer)
    axis = 0 if norm == "batch" else 1
    assert torch.allclose(emb.mean(axis), torch.zeros(emb.shape[1 - axis]), atol=1e-4)
    one = model(_batch("gnn", data, n=1))
    assert one.shape == (1,) and torch.isfinite(one).all()
    one.sum().backward()


def test_pretrained_encoder_loads_from_a_local_directory(tmp_path):
    config = RobertaConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=32, max_position_embeddings=40, pad_token_id=0)
    seed_everything(0)
    original = RobertaModel(config, add_pooling_layer=False)
    original.save_pretrained(tmp_path / "tiny")
    loaded = build_encoder(50, 0, 32, 8, 1, 1, 8, 0.0, pretrained=str(tmp_path / "tiny"))
    assert loaded.config.hidden_size == 16
    for (name, a), (_, b) in zip(original.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name


def test_pretrained_encoder_missing_path_is_a_clear_error(tmp_path):
    from streamguard.errors import StreamGuardError
    with pytest.raises(StreamGuardError, match="cannot load the pretrained model"):
        build_encoder(50, 0, 32, 8, 1, 1, 8, 0.0, pretrained=str(tmp_path / "nope"))


def test_unreachable_hub_names_the_settings_that_point_at_a_local_checkpoint(tmp_path):
    """The production profile's CodeBERT on a machine without the hub: one line saying what to set."""
    # A fresh interpreter: the hub reads HF_HUB_OFFLINE when it is imported, and an already imported one
    # would retry the network for a minute before failing. Offline with an empty HF_HOME is "no hub, no
    # cached copy" without the wait.
    probe = (
        "from streamguard.data.tokenizer import load_tokenizer\n"
        "from streamguard.errors import StreamGuardError\n"
        "from streamguard.models.transformer import build_encoder\n"
        "for load in (lambda: build_encoder(50, 0, 32, 8, 1, 1, 8, 0.0, pretrained='microsoft/codebert-base'),\n"
        "             lambda: load_tokenizer('microsoft/codebert-base')):\n"
        "    try:\n"
        "        load()\n"
        "    except StreamGuardError as err:\n"
        "        print(repr(str(err)))\n"
    )
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home")}
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    messages = [ast.literal_eval(line) for line in proc.stdout.splitlines()]
    assert len(messages) == 2, proc.stdout
    for message, what in zip(messages, ("model", "tokenizer")):
        assert message.startswith(f"microsoft/codebert-base: cannot load the pretrained {what}") and "\n" not in message
        assert "'tokenizer.pretrained' and 'transformer.pretrained'" in message
        assert "HF_HUB_OFFLINE=1" in message  # how to skip the minute of retries next time


def test_fusion_gradient_reaches_all_three_components(processed):
    data, cfg = processed
    model = build_model(get_kind("fusion").spec(cfg, data))
    batch = _batch("fusion", data, 8)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(batch), batch["labels"].float())
    loss.backward()
    for name, module in model.component_modules().items():
        norms = [p.grad.norm() for p in module.parameters() if p.grad is not None]
        assert norms and float(torch.stack(norms).sum()) > 0, name
    assert all(p.grad is None for p in model.transformer.head.parameters())  # frozen, unused in fusion


def _accumulated_gradients(data, cfg, batch_size, grad_accum, out_dir):
    """One optimizer step through the engine; AdamW's first moment then holds (1 - beta1) * gradient."""
    seed_everything(3)
    spec = get_kind("fusion").spec(cfg, data)
    spec["dropout"] = spec["transformer"]["dropout"] = spec["gnn"]["dropout"] = 0.0
    model = build_model(spec)
    ds = torch.utils.data.Subset(get_kind("fusion").dataset(data, "train"), list(range(8)))
    collate = FusionCollator(data.pad_id)
    loaders = {"train": make_loader(ds, batch_size, shuffle=False, seed=0, collate_fn=collate),
               "val": make_loader(get_kind("fusion").dataset(data, "valid"), 16, seed=0, collate_fn=collate)}
    tc = LoopConfig(epochs=1, lr=1e-3, grad_accum=grad_accum, warmup_ratio=0.0, patience=0, max_grad_norm=1e6)
    trainer = Trainer(model, loaders, make_loss("bce"), tc, out_dir, RunInfo("fusion_test", 3),
                      get_kind("fusion").param_groups(model, cfg.fusion))
    trainer.train_epoch()
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: st["exp_avg"].clone() for p, st in trainer.optimizer.state.items()}


def test_accumulating_two_steps_equals_one_step_on_the_doubled_batch(processed, tmp_path):
    data, cfg = processed
    accumulated = _accumulated_gradients(data, cfg, batch_size=4, grad_accum=2, out_dir=tmp_path / "a")
    single = _accumulated_gradients(data, cfg, batch_size=8, grad_accum=1, out_dir=tmp_path / "b")
    assert accumulated.keys() == single.keys() and len(single) > 20
    nonzero = 0
    for name, grad in single.items():
        assert torch.allclose(accumulated[name], grad, atol=1e-7, rtol=1e-4), name
        nonzero += bool(grad.abs().sum() > 0)
    assert nonzero > 20  # real gradients, not an all-zero comparison


def test_collapse_detection_watches_each_fusion_component(processed, tmp_path):
    """A component that stops receiving gradient (here the GNN branch) ends the run as collapsed,
    though the total gradient norm stays healthy."""
    data, cfg = processed
    model = build_model(get_kind("fusion").spec(cfg, data))
    gnn_encode = model.gnn.encode
    model.gnn.encode = lambda batch: gnn_encode(batch).detach()  # cut the branch off from the loss
    collate = FusionCollator(data.pad_id)
    loaders = {"train": make_loader(get_kind("fusion").dataset(data, "train"), 16, seed=0, collate_fn=collate),
               "val": make_loader(get_kind("fusion").dataset(data, "valid"), 16, seed=0, collate_fn=collate)}
    from streamguard.train.engine import train
    result = train(model, loaders, make_loss("bce"), LoopConfig(epochs=3, lr=1e-3, patience=0),
                   tmp_path, RunInfo("fusion_dead_branch", 1), param_groups=get_kind("fusion").param_groups(model, cfg.fusion))
    assert result.status == "collapsed"
    report = json.loads((tmp_path / "collapse_report.json").read_text())
    assert report["events"][-1]["kind"] == "zero_grad"
    assert report["events"][-1]["value"] == {"groups": ["gnn"]}
    assert all(norm > 0 for norm in report["recent_grad_norms"])
