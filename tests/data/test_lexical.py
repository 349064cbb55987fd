"""The lexical view: the baseline's TF-IDF + LR, fit on train, out-of-fold on train, saved without pickle."""
import json

import numpy as np
import pytest
import torch

from streamguard.baselines.tfidf import fit_predict
from streamguard.data import lexical
from streamguard.data.datasets import FusionCollator, ProcessedData
from streamguard.data.encoder import FunctionEncoder
from streamguard.errors import DataError
from streamguard.kinds import build_model, get_kind

from ..fixtures import make_processed


def _split(processed, name):
    rows = [json.loads(line) for line in (processed / "splits" / f"{name}.jsonl").open()]
    return [r["code"] for r in rows], np.array([r["label"] for r in rows]), [r["group"] for r in rows]


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    return make_processed(tmp_path_factory.mktemp("lexical"))


def test_valid_and_test_logits_are_the_baselines_own_scores(processed):
    path, cfg = processed
    codes, labels, _ = _split(path, "train")
    evals = {s: _split(path, s)[0] for s in ("valid", "test")}
    probs = fit_predict(codes, labels, evals, seed=cfg.seed)
    for s in ("valid", "test"):
        logits = np.load(path / "lexical" / f"{s}.npy")
        np.testing.assert_allclose(1 / (1 + np.exp(-logits)), probs[s], atol=1e-6)


def test_train_logits_are_out_of_fold_with_twins_in_one_fold(processed):
    path, cfg = processed
    codes, labels, groups = _split(path, "train")
    folds = lexical.fold_ids(labels, groups, cfg.lexical.folds, cfg.seed)
    for g in set(groups):
        assert len({folds[i] for i in range(len(groups)) if groups[i] == g}) == 1
    # Each function's logit is what the model fit without its fold gives it, not the full fit's.
    k = int(folds[0])
    fit = np.flatnonzero(folds != k)
    model = lexical.LexicalModel.fit([codes[i] for i in fit], labels[fit], cfg.seed)
    held = np.flatnonzero(folds == k)
    stored = np.load(path / "lexical" / "train.npy")
    np.testing.assert_allclose(stored[held], model.logits([codes[i] for i in held]), atol=1e-5)
    full = lexical.LexicalModel.fit(codes, labels, cfg.seed).logits([codes[i] for i in held])
    assert not np.allclose(stored[held], full, atol=1e-4)


def test_saved_model_reloads_to_the_same_scores_and_scan_uses_it(processed):
    path, _ = processed
    codes, _, _ = _split(path, "test")
    reloaded = lexical.LexicalModel.load(path / "lexical")
    np.testing.assert_allclose(reloaded.logits(codes), np.load(path / "lexical" / "test.npy"), atol=1e-5)
    encoder = FunctionEncoder(path)
    assert encoder.has_lexical
    np.testing.assert_allclose(encoder.lexical_logits(codes[:4]).numpy(), np.load(path / "lexical" / "test.npy")[:4],
                               atol=1e-5)


def test_a_damaged_lexical_model_is_one_line_naming_the_file(processed, tmp_path):
    path, _ = processed
    bad = tmp_path / "lexical"
    bad.mkdir()
    (bad / lexical.VOCAB_FILE).write_bytes((path / "lexical" / lexical.VOCAB_FILE).read_bytes())
    from safetensors.numpy import save_file

    save_file({"idf": np.ones(3), "coef": np.ones(3), "intercept": np.zeros(1)}, str(bad / lexical.WEIGHTS_FILE))
    with pytest.raises(DataError, match=r"weights.safetensors.*'idf' must hold \d+ values"):
        lexical.LexicalModel.load(bad)
    (bad / lexical.WEIGHTS_FILE).write_bytes(b"not safetensors")
    with pytest.raises(DataError, match="weights.safetensors.*unreadable"):
        lexical.LexicalModel.load(bad)


def test_prepare_without_the_view_and_a_fusion_that_asks_for_it(tmp_path):
    path, cfg = make_processed(tmp_path, **{"lexical.enabled": False})
    assert not (path / "lexical").exists()
    data = ProcessedData(path)
    with pytest.raises(DataError, match=r"lexical/train.npy.*lexical.enabled: true.*fusion.lexical: false"):
        get_kind("fusion").spec(cfg, data)


def test_the_fusion_adds_the_lexical_logit_with_a_learned_weight(processed):
    path, cfg = processed
    data = ProcessedData(path)
    kind = get_kind("fusion")
    model = build_model(kind.spec(cfg, data)).eval()
    batch = FusionCollator(data.pad_id)([kind.dataset(data, "train")[i] for i in range(4)])
    assert torch.equal(batch["lexical"], data.lexical("train")[:4])
    with torch.no_grad():
        base = model(batch)
        batch["lexical"] = batch["lexical"] + 2.0
        assert torch.allclose(model(batch) - base, torch.full((4,), 2.0 * model.lexical_weight.item()), atol=1e-5)
    groups = {g.name: g for g in kind.param_groups(model, cfg.fusion)}
    assert any(p is model.lexical_weight for p in groups["fusion"].parameters())
