"""Long functions as windows (`tokenizer.max_windows`): prepare keeps them, the transformer and the
fusion train on them, and a bundle scores them in `streamguard scan` exactly as training predicted."""
import dataclasses
import json

import pytest
import torch

from streamguard import runs
from streamguard.cli import main
from streamguard.data.datasets import ProcessedData
from streamguard.data.tokenizer import load_tokenizer
from streamguard.io import write_json_atomic
from streamguard.runs.pretrain import META_FILE, _Masking, pretrain

from .fixtures import make_processed, predicted_probs

WINDOW, WINDOWS = 32, 3


@pytest.fixture(scope="module")
def windowed(tmp_path_factory):
    root = tmp_path_factory.mktemp("windows")
    processed, cfg = make_processed(root, **{"tokenizer.max_length": WINDOW, "tokenizer.max_windows": WINDOWS,
                                             "transformer.epochs": 1, "gnn.epochs": 1, "fusion.epochs": 1})
    lr_dir = root / "lr"
    for kind in ("transformer", "gnn"):
        write_json_atomic(lr_dir / kind / "recommended_lr.json", {"lr": 1e-3})
    outputs = root / "outputs"
    for kind in ("transformer", "gnn", "fusion"):
        runs.train_run(kind, cfg, 42, outputs, processed, lr_dir=lr_dir)
    return root, processed, outputs, cfg


def test_prepare_keeps_up_to_max_windows_windows_and_records_them(windowed):
    _, processed, _, _ = windowed
    meta = json.loads((processed / "prepare_meta.json").read_text())
    assert (meta["max_length"], meta["max_windows"]) == (WINDOW, WINDOWS)
    data = ProcessedData(processed)
    lengths = data.tokens("train").lengths
    assert lengths.max() == WINDOW * WINDOWS and (lengths > WINDOW).float().mean() > 0.5
    windows, _ = data.tokens("train")[int(lengths.argmax())]
    assert [w.shape[-1] for w in windows] == [WINDOW] * WINDOWS
    stats = json.loads((processed / "dataset_stats.json").read_text())
    assert stats["tokenizer"]["max_windows"] == WINDOWS


@pytest.mark.parametrize("model", ["transformer", "fusion"])
def test_windowed_runs_train_and_scan_scores_as_predict_does(windowed, tmp_path, model):
    _, processed, outputs, _ = windowed
    metrics = json.loads((runs.run_dir(outputs, model, 42) / "metrics.json").read_text())
    assert metrics["status"] == "ok" and 0.0 <= metrics["test"]["roc_auc"] <= 1.0
    data = ProcessedData(processed)
    expected = predicted_probs(outputs, processed, model)
    bundle = tmp_path / "bundle"
    assert main(["export", "--model", model, "--seed", "42", "--outputs", str(outputs),
                 "--processed", str(processed), "-o", str(bundle)]) == 0
    records = [json.loads(line) for line in (processed / "splits" / "test.jsonl").read_text().splitlines()]
    lengths = data.tokens("test").lengths
    picks = [int(i) for i in torch.argsort(lengths, descending=True)[:3]]  # the most windows
    assert lengths[picks[0]] > 2 * WINDOW
    src = tmp_path / "src"
    src.mkdir()
    for n, i in enumerate(picks):
        (src / f"f{n}.c").write_text(records[i]["code"])
    out = tmp_path / "report.json"
    assert main(["scan", str(src), "--bundle", str(bundle), "--format", "json", "-o", str(out),
                 "--fail-on", "never", "--no-explain"]) == 0
    found = json.loads(out.read_text())["functions"]
    assert len(found) == 3
    for f, i in zip(found, picks):
        assert f["probability"] == pytest.approx(float(expected[i]), abs=2e-6)


def test_pretraining_masks_each_window_as_a_sequence_of_its_own(windowed, tmp_path):
    _, processed, _, cfg = windowed
    data = ProcessedData(processed)
    items = [data.tokens("train")[i] for i in range(4)]
    batch = _Masking(load_tokenizer(processed / "tokenizer"), 0.15, 0)(items)
    assert batch["input_ids"].shape == (sum(len(w) for w, _ in items), WINDOW)
    cfg = dataclasses.replace(cfg, pretrain=dataclasses.replace(cfg.pretrain, enabled=True, epochs=1, batch_size=8))
    pretrain(cfg, processed, tmp_path / "pretrain")
    meta = json.loads((tmp_path / "pretrain" / META_FILE).read_text())
    assert meta["status"] == "ok" and meta["history"][-1]["valid_loss"] < 20
