"""`streamguard` commands on real files: scan (text/JSON/SARIF), validate-outputs, lr-cache, dataset-hash."""
import json

import pytest

from streamguard import runs
from streamguard.cli import main
from streamguard.data.identity import dataset_hash
from streamguard.io import write_json_atomic

SOURCE_A = """
#include <string.h>
static int add(int a, int b) { return a + b; }

void copy_name(char *input) {
    char buf[16];
    strcpy(buf, input);
}
"""
SOURCE_B = "int main(int argc, char **argv) { return argc > 1; }\n"


@pytest.fixture(scope="module")
def fused(trained):  # `trained` comes from tests/conftest.py
    root, processed, cfg, outputs = trained
    if not (runs.run_dir(outputs, "fusion", 42) / "metrics.json").exists():
        runs.train_run("fusion", cfg, 42, outputs, processed)
    return processed, outputs


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "a.c").write_text(SOURCE_A)
    (tmp_path / "src" / "sub" / "b.c").write_text(SOURCE_B)
    (tmp_path / "src" / "notes.txt").write_text("not code")
    return tmp_path / "src"


@pytest.mark.parametrize("model", ["transformer", "gnn", "fusion"])
def test_scan_json_lists_every_function_with_lines(fused, tree, tmp_path, model):
    processed, outputs = fused
    out = tmp_path / "report.json"
    code = main(["scan", str(tree), "--model", model, "--seed", "42", "--format", "json", "-o", str(out),
                 "--outputs", str(outputs), "--processed", str(processed)])
    assert code == 0
    report = json.loads(out.read_text())
    found = [(f["function"], f["start_line"]) for f in report["functions"]]
    assert found == [("add", 3), ("copy_name", 5), ("main", 1)]
    assert all(0.0 <= f["probability"] <= 1.0 for f in report["functions"])


def test_scan_sarif_reports_flagged_functions(fused, tree, tmp_path):
    processed, outputs = fused
    out = tmp_path / "report.sarif"
    assert main(["scan", str(tree), "--format", "sarif", "--threshold", "0", "--seed", "42", "-o", str(out),
                 "--outputs", str(outputs), "--processed", str(processed)]) == 0
    sarif = json.loads(out.read_text())
    assert sarif["version"] == "2.1.0"
    results = sarif["runs"][0]["results"]
    assert len(results) == 3  # threshold 0 flags everything
    region = results[1]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 5, "endLine": 8}


def test_scan_text_summary_line(fused, tree, capsys):
    processed, outputs = fused
    assert main(["scan", str(tree / "a.c"), "--threshold", "1.01", "--seed", "42",
                 "--outputs", str(outputs), "--processed", str(processed)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("0 of 2 functions flagged (model fusion")


def test_scan_errors_are_one_line_exit_2(fused, tmp_path, capsys):
    processed, outputs = fused
    assert main(["scan", str(tmp_path / "missing"), "--seed", "42", "--outputs", str(outputs),
                 "--processed", str(processed)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'missing'}: no such file or directory"
    assert main(["scan", str(tmp_path), "--seed", "9", "--outputs", str(outputs), "--processed", str(processed)]) == 2
    assert "train the fusion model for seed 9 first" in capsys.readouterr().err


def test_validate_outputs_command(tmp_path, capsys):
    write_json_atomic(tmp_path / "good" / "metrics.json", {"f1": 0.5})
    assert main(["validate-outputs", "--root", str(tmp_path)]) == 0
    (tmp_path / "bad.json").write_text('{"f1": NaN}')
    assert main(["validate-outputs", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "bad.json" in out and "1 problem(s)" in out


def test_lr_cache_list_and_clear(tmp_path, capsys):
    from streamguard.train.lr_cache import LRCache
    from streamguard.train.lr_finder import LRFinderResult, suggest_lr
    import numpy as np

    lrs = list(np.geomspace(1e-6, 1, 40))
    losses = [1.0 - 0.5 * (i / 40) for i in range(40)]
    lr, raw, conf, reason = suggest_lr(lrs, losses, (1e-4, 1e-3))
    result = LRFinderResult(lr=lr, raw_lr=raw, confidence=conf, reason=reason, lr_range=(1e-4, 1e-3),
                            lrs=lrs, losses=losses, smoothed=losses, stop_reason="completed", settings={})
    cache = LRCache(tmp_path / "cache")
    cache.put("gnn", "k1", result)
    cache.put("transformer", "k2", result)
    assert main(["lr-cache", "list", "--dir", str(tmp_path / "cache")]) == 0
    assert "2 entries" in capsys.readouterr().out
    assert main(["lr-cache", "clear", "--model", "gnn", "--dir", str(tmp_path / "cache")]) == 0
    assert "removed 1 entry" in capsys.readouterr().out
    assert main(["lr-cache", "list", "--dir", str(tmp_path / "cache")]) == 0
    assert "1 entry" in capsys.readouterr().out


def test_dataset_hash_command(trained, capsys):
    _, processed, _, _ = trained
    assert main(["dataset-hash", str(processed)]) == 0
    assert capsys.readouterr().out.strip() == dataset_hash(processed)


def test_function_names_through_pointer_and_function_pointer_declarators():
    from streamguard.graphs.languages import extract_functions
    src = b"static char *const *get(int a) { return 0; }\nint (*fp(void))(int) { return 0; }\nvoid plain(void) {}\n"
    assert [f[:3] for f in extract_functions(src)] == [("get", 1, 1), ("fp", 2, 2), ("plain", 3, 3)]


@pytest.mark.parametrize("model", ["transformer", "gnn", "fusion"])
def test_scan_scores_a_function_as_predict_does_on_its_test_sample(fused, tmp_path, model):
    """scan re-encodes source text through the same code path as prepare: its probability for a test
    function equals the engine's predict() on that function's prepared sample."""
    from streamguard.data.datasets import ProcessedData
    from streamguard.io import read_json
    from streamguard.train.checkpoint import CHECKPOINT_FILE, load_best_weights, load_model_spec
    from streamguard.train.engine import predict

    processed, outputs = fused
    data = ProcessedData(processed)
    kind = runs.get_kind(model)
    ckpt = runs.run_dir(outputs, model, 42) / CHECKPOINT_FILE
    net = runs.build_model(load_model_spec(ckpt))
    net.load_state_dict(load_best_weights(ckpt))
    loader = runs.make_loaders(kind, {"test": kind.dataset(data, "test")}, 8, 0, data.pad_id, False)["test"]
    expected = predict(net, loader, "cpu").probs
    records = [json.loads(line) for line in (processed / "splits" / "test.jsonl").read_text().splitlines()]
    for i in (0, 1, len(records) - 1):
        src = tmp_path / f"f{i}.c"
        src.write_text(records[i]["code"])
        out = tmp_path / f"f{i}.json"
        assert main(["scan", str(src), "--model", model, "--seed", "42", "--format", "json", "-o", str(out),
                     "--outputs", str(outputs), "--processed", str(processed)]) == 0
        found = json.loads(out.read_text())["functions"]
        assert len(found) == 1
        assert found[0]["probability"] == pytest.approx(float(expected[i]), abs=2e-6)
