"""The baseline stage's work on a real (tiny) prepared dataset: files like a run's, reproducible, clear errors."""
import hashlib
import json

import numpy as np
import pytest

from streamguard.baselines.run import run_tfidf_baseline
from streamguard.errors import DataError
from streamguard.io import read_json

from ..fixtures import make_processed


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    path, _ = make_processed(tmp_path_factory.mktemp("baseline"))
    return path


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_baseline_writes_metrics_and_test_predictions_in_split_order(processed, tmp_path):
    metrics = run_tfidf_baseline(processed, tmp_path / "out", seed=42, policy="mcc", target_fpr=None,
                                 log_dir=tmp_path / "logs")
    n_test = len((processed / "splits" / "test.jsonl").read_text().splitlines())
    probs = np.load(tmp_path / "out" / "test_predictions.npy")
    assert probs.shape == (n_test,) and probs.dtype == np.float32 and ((probs >= 0) & (probs <= 1)).all()
    on_disk = read_json(tmp_path / "out" / "metrics.json")
    assert on_disk == metrics and on_disk["model"] == "tfidf_lr" and on_disk["status"] == "ok"
    assert 0.0 <= on_disk["threshold"] <= 1.0 and on_disk["test"]["roc_auc"] is not None
    labels = [json.loads(line)["label"] for line in (processed / "splits" / "test.jsonl").read_text().splitlines()]
    from streamguard.train.metrics import compute_metrics
    assert compute_metrics(np.array(labels), probs.astype(np.float64), on_disk["threshold"])["roc_auc"] == \
        pytest.approx(on_disk["test"]["roc_auc"], abs=1e-6)  # the predictions line up with the split's labels
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["metrics.json", "test_predictions.npy"]
    assert read_json(tmp_path / "logs" / "baseline_log.json")["wall_time_s"] > 0


def test_baseline_reruns_write_identical_bytes(processed, tmp_path):
    for name in ("a", "b"):
        run_tfidf_baseline(processed, tmp_path / name, 7, "fpr", 0.1, log_dir=tmp_path / f"log_{name}")
    for file in ("metrics.json", "test_predictions.npy"):
        assert _md5(tmp_path / "a" / file) == _md5(tmp_path / "b" / file)


def test_missing_or_malformed_split_is_one_line(processed, tmp_path):
    with pytest.raises(DataError, match="splits/train.jsonl: not found; run the prepare stage first"):
        run_tfidf_baseline(tmp_path / "nothing", tmp_path / "out", 42, "mcc", None)
    broken = tmp_path / "broken"
    (broken / "splits").mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (broken / "splits" / f"{split}.jsonl").write_text((processed / "splits" / f"{split}.jsonl").read_text())
    (broken / "splits" / "valid.jsonl").write_text('{"code": "int a;", "label": 0}\n{"code": "x"}\n')
    with pytest.raises(DataError, match=r"valid.jsonl:2, field 'label': expected 0 or 1, got None") as err:
        run_tfidf_baseline(broken, tmp_path / "out", 42, "mcc", None)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()  # nothing half-written
