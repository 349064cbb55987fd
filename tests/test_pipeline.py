"""The whole pipeline through real `dvc repro` / `dvc exp run` in a throw-away copy of the repository."""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest
import yaml

from streamguard.config import compose_params, write_params
from streamguard.data.identity import dataset_hash
from streamguard.io import read_json
from streamguard.report.validate import validate_outputs, validate_summary

from .conftest import REPO

TINY_PARAMS = {
    "data": {"synthetic": {"n_functions": 120}},
    "tokenizer": {"vocab_size": 400, "max_length": 96},
    "graph": {"max_nodes": 16, "workers": 1},
    "transformer": {"hidden_size": 32, "num_heads": 2, "intermediate_size": 64, "epochs": 1},
    "gnn": {"hidden_size": 32, "epochs": 2},
    "fusion": {"hidden_size": 32, "epochs": 1, "oof_folds": 2, "oof_epochs": 1},
    "lr_find": {"steps": 12},
    "pretrain": {"enabled": True, "epochs": 1},  # on whatever the profile says: the stage must run for real
}
MODELS = ("transformer", "gnn", "fusion")


def _merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict):
            _merge(base.setdefault(key, {}) or {}, value) if base.get(key) else base.__setitem__(key, value)
        else:
            base[key] = value
    return base


def _run(args, cwd, check=True, **kw):
    env = dict(os.environ, PATH=f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    # `dvc exp run` commits experiments: give git an identity on machines without one.
    for var in ("GIT_AUTHOR", "GIT_COMMITTER"):
        env.setdefault(f"{var}_NAME", "StreamGuard test")
        env.setdefault(f"{var}_EMAIL", "test@streamguard.invalid")
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A git + DVC copy of the repository (tracked and new files, no outputs) with tiny params."""
    dest = tmp_path_factory.mktemp("pipeline") / "repo"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file() and not rel.startswith(("data/processed", "training/")) and rel != "dvc.lock":
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    # Tiny values go into conf/ (what `dvc exp run -S` composes params.yaml from) and params.yaml.
    conf = _merge(yaml.safe_load((dest / "conf" / "config.yaml").read_text()), TINY_PARAMS)
    (dest / "conf" / "config.yaml").write_text(yaml.safe_dump(conf, sort_keys=False))
    write_params(dest / "params.yaml", compose_params(conf_dir=dest / "conf"))
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]):
        _run(cmd, dest)
    return dest


@pytest.fixture(scope="module")
def reproduced(project):
    start = time.perf_counter()
    proc = _run(["dvc", "repro"], project)
    elapsed = time.perf_counter() - start
    # Commit the lock and the metrics files, as a user would, so that `dvc metrics diff` has a baseline.
    _run(["git", "add", "-A"], project)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "repro"], project)
    return project, proc, elapsed


@pytest.mark.slow
def test_dvc_repro_builds_every_output(reproduced):
    project, _, _ = reproduced
    out = project / "training" / "outputs"
    for model in MODELS:
        for seed in (42, 2025, 7):
            run = out / f"{model}_v17" / f"seed_{seed}"
            assert (run / "metrics.json").is_file() and (run / "model_checkpoint.pt").is_file(), run
    assert (out / "fusion_v17" / "seed_7" / "oof_predictions.npy").is_file()
    assert (out / "gnn_v17" / "seed_42" / "lr_curve.png").is_file()
    trunk = read_json(project / "training" / "pretrain" / "pretrain.json")
    assert trunk["status"] == "ok"
    for seed in (42, 2025, 7):  # every transformer run started from the one pretrained trunk
        meta = read_json(out / "transformer_v17" / f"seed_{seed}" / "training_metadata.json")
        assert meta["extra"]["init_from"]["sha256"] == trunk["sha256"]
    summary = read_json(out / "production_summary" / "production_summary.json")
    validate_summary(summary)
    assert set(summary["models"]) == {"transformer_v17", "gnn_v17", "fusion_v17"}
    assert validate_outputs(out) == []


@pytest.mark.slow
def test_export_stage_bundles_the_best_fusion_run_and_scan_uses_it(reproduced, tmp_path):
    project, _, _ = reproduced
    bundle = read_json(project / "training" / "bundle" / "config.json")
    summary = read_json(project / "training" / "outputs" / "production_summary" / "production_summary.json")
    assert bundle["model"]["kind"] == "fusion"
    assert bundle["model"]["seed"] == summary["models"]["fusion_v17"]["best_seed"]
    (tmp_path / "x.c").write_text("void f(char *s) { char b[8]; strcpy(b, s); }\n")
    scan = str(pathlib.Path(sys.executable).with_name("streamguard"))
    # From a subdirectory of the project and without --bundle: the export stage's bundle is found.
    proc = _run([scan, "scan", str(tmp_path / "x.c"), "--format", "json", "-o", str(tmp_path / "r.json"),
                 "--fail-on", "never"], project / "training", check=False)
    assert proc.returncode == 0, proc.stderr
    assert [f["function"] for f in read_json(tmp_path / "r.json")["functions"]] == ["f"]


@pytest.mark.slow
def test_dataset_hash_equals_the_md5_in_dvc_lock(reproduced):
    project, _, _ = reproduced
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    recorded = next(o["md5"] for o in lock["stages"]["prepare"]["outs"] if o["path"] == "data/processed")
    assert dataset_hash(project / "data" / "processed") == recorded
    meta = read_json(project / "training" / "outputs" / "gnn_v17" / "seed_42" / "training_metadata.json")
    assert meta["dataset_hash"] == recorded


@pytest.mark.slow
def test_metrics_are_the_committed_headline_file_and_noop_repro_is_fast(reproduced):
    project, _, _ = reproduced
    shown = json.loads(_run(["dvc", "metrics", "show", "--json"], project).stdout)
    files = {path for workspace in shown.values() for path in workspace["data"]}
    assert files == {"metrics/summary.json"}
    headline = read_json(project / "metrics" / "summary.json")
    assert set(headline) == set(MODELS) | {"tfidf_lr"} and all(headline[m]["roc_auc"] is not None for m in MODELS)
    assert all(headline[m]["auc_vs_baseline"] is not None for m in MODELS)  # every model compared
    report = (project / "training" / "outputs" / "production_summary" / "production_report.md").read_text()
    assert "Against the baseline" in report
    # Not DVC-cached: git holds them, so a fresh clone can diff against HEAD without a remote.
    tracked = _run(["git", "ls-files", "metrics"], project).stdout.split()
    assert sorted(tracked) == ["metrics/runs.json", "metrics/summary.json"]
    runs = json.loads(_run(["dvc", "metrics", "show", "--json", "metrics/runs.json"], project).stdout)
    assert runs  # the per-run detail is one command away
    start = time.perf_counter()
    proc = _run(["dvc", "repro"], project)
    assert "up to date" in proc.stdout
    assert time.perf_counter() - start < 20
    assert "changed" not in _run(["dvc", "status"], project).stdout


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["baseline", "pretrain", "lr_find", "train_gnn@42", "train_fusion@7", "aggregate"])
def test_a_forced_rerun_reproduces_the_md5s_in_dvc_lock(reproduced, stage):
    """Wall times and cache hits live in training/logs, outside the outs: a rerun hashes the same."""
    project, _, _ = reproduced
    before = (project / "dvc.lock").read_text()
    _run(["dvc", "repro", "--force", "--single-item", stage], project)
    assert (project / "dvc.lock").read_text() == before
    assert _run(["git", "status", "--porcelain", "--untracked-files=no"], project).stdout == ""


@pytest.mark.slow
def test_changing_epochs_keeps_lr_find_but_model_config_invalidates_it(reproduced):
    project, _, _ = reproduced
    original = (project / "params.yaml").read_text()

    def stale_stages(section, key, value):
        params = yaml.safe_load(original)
        params[section][key] = value
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        return set(json.loads(_run(["dvc", "status", "--json"], project).stdout))

    try:
        stale = stale_stages("transformer", "epochs", 3)
        assert "lr_find" not in stale and "train_transformer@42" in stale
        assert "lr_find" in stale_stages("transformer", "hidden_size", 48)
    finally:
        (project / "params.yaml").write_text(original)


@pytest.mark.slow
def test_exp_run_with_another_seed_shows_real_metric_changes(reproduced):
    project, _, _ = reproduced
    proc = _run(["dvc", "exp", "run", "-S", "seed=2025"], project)
    assert "Running stage 'prepare'" in proc.stdout
    diff = json.loads(_run(["dvc", "metrics", "diff", "--json"], project).stdout)
    changed = [key for values in diff.values() for key, v in values.items() if v.get("diff") not in (0, None)]
    assert len(changed) >= 3, diff  # headline figures of several models moved
    params = json.loads(_run(["dvc", "params", "diff", "--json"], project).stdout)
    assert (params["params.yaml"]["seed"]["old"], params["params.yaml"]["seed"]["new"]) == (42, 2025)
    _run(["git", "checkout", "--", "params.yaml"], project)
    _run(["dvc", "checkout", "--force"], project)


@pytest.mark.slow
def test_rerun_after_wiping_outputs_and_dvc_cache_hits_the_lr_cache(reproduced):
    project, _, _ = reproduced
    for rel in (".dvc/cache", "data/processed", "training/outputs", "training/lr_find"):
        shutil.rmtree(project / rel, ignore_errors=True)
    _run(["dvc", "repro", "lr_find"], project)
    for model in ("transformer", "gnn"):
        assert read_json(project / "training" / "logs" / f"lr_find_{model}.json")["cache"]["hit"] is True


@pytest.mark.slow
def test_bad_input_file_fails_prepare_with_one_line_and_keeps_old_outputs(reproduced):
    project, _, _ = reproduced
    before = dataset_hash(project / "data" / "processed")
    bad = project / "bad.jsonl"
    bad.write_text('{"func": "int a;", "target": 0}\n{"func": "int b;", "target": 7}\n')
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"]["source"] = "files"
    params["data"]["files"]["path"] = str(bad)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        proc = _run([sys.executable, "stages/prepare.py"], project, check=False)
    finally:
        _run(["git", "checkout", "--", "params.yaml"], project)
    assert proc.returncode == 2
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert error_lines == [f"error: {bad}:2, field 'target': label must be binary (0/1 or true/false), got 7; "
                           "data/processed was left as it was (if it is missing: dvc checkout data/processed)"]
    assert dataset_hash(project / "data" / "processed") == before
    assert not [p for p in (project / "data").iterdir() if p.name.startswith(".processed")]
