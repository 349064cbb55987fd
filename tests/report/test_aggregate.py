from __future__ import annotations

import csv
import hashlib
import json

import numpy as np
import pytest

from streamguard.errors import ConfigError
from streamguard.io import read_json, write_json_atomic
from streamguard.report import aggregate, load_run, mean_std
from streamguard.report.aggregate import METRICS, STABILITY_COLUMNS

from .conftest import SEEDS, write_run

MODELS = ["transformer_v17", "gnn_v17", "fusion_v17"]  # run-directory names, as the stage passes them

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def result(scenario):
    summary = aggregate(scenario["outputs"], scenario["out"], models=MODELS, seeds=SEEDS)
    return {**scenario, "summary": summary}


def ok_values(runs, model, metric):
    return [runs[(model, s)]["metrics"]["test"][metric] for s in SEEDS
            if (model, s) in runs and runs[(model, s)]["metrics"]["status"] == "ok"]


def test_means_and_sample_stds_match_numpy(result):
    summary, runs = result["summary"], result["runs"]
    for model in ("transformer", "fusion"):
        entry = summary["models"][f"{model}_v17"]
        for metric in METRICS:
            values = np.array(ok_values(runs, model, metric))
            assert len(values) >= 2
            assert entry[f"mean_{metric}"] == pytest.approx(values.mean(), abs=1e-12)
            assert entry[f"std_{metric}"] == pytest.approx(values.std(ddof=1), abs=1e-12)


def test_single_ok_run_has_zero_std(result):
    entry = result["summary"]["models"]["gnn_v17"]
    assert entry["n_ok"] == 1
    assert entry["mean_f1"] == pytest.approx(result["runs"][("gnn", 42)]["metrics"]["test"]["f1"])
    assert entry["std_f1"] == 0.0


def test_collapsed_run_is_marked_and_excluded(result):
    entry = result["summary"]["models"]["fusion_v17"]
    assert (entry["n_ok"], entry["n_collapsed"], entry["n_missing"]) == (2, 1, 0)
    run = next(r for r in entry["runs"] if r["seed"] == 2025)
    assert run["status"] == "collapsed"
    assert "all predictions are one class" in run["reason"]
    assert entry["mean_f1"] == pytest.approx(np.mean(ok_values(result["runs"], "fusion", "f1")))
    assert entry["best_seed"] != 2025 and entry["best_f1"] < 0.99


def test_missing_and_corrupt_runs_are_marked(result):
    entry = result["summary"]["models"]["gnn_v17"]
    assert (entry["n_ok"], entry["n_collapsed"], entry["n_missing"]) == (1, 0, 2)
    by_seed = {r["seed"]: r for r in entry["runs"]}
    assert by_seed[2025]["status"] == "missing" and "not found" in by_seed[2025]["reason"]
    assert by_seed[7]["status"] == "missing" and "not valid strict JSON" in by_seed[7]["reason"]
    assert by_seed[7]["test"] is None
    assert [r["seed"] for r in entry["runs"]] == SEEDS


def test_best_seed_and_best_model(result):
    summary, runs = result["summary"], result["runs"]
    means = {}
    for model in ("transformer", "gnn", "fusion"):
        ok = [s for s in SEEDS if (model, s) in runs and runs[(model, s)]["metrics"]["status"] == "ok"]
        f1 = [runs[(model, s)]["metrics"]["test"]["f1"] for s in ok]
        entry = summary["models"][f"{model}_v17"]
        assert entry["best_seed"] == ok[int(np.argmax(f1))]
        assert entry["best_f1"] == pytest.approx(max(f1))
        means[f"{model}_v17"] = np.mean(f1)
    best = max(means, key=means.get)
    assert summary["best_overall_model"] == best
    assert summary["best_overall_f1"] == pytest.approx(means[best])


def test_summary_file_round_trips_and_matches_plan_schema(result):
    on_disk = read_json(result["out"] / "production_summary.json")
    assert on_disk == json.loads(json.dumps(result["summary"]))
    assert list(on_disk) == ["seeds", "statistics", "models", "best_overall_model", "best_overall_f1"]  # no timestamp
    assert set(on_disk["models"]) == {"transformer_v17", "gnn_v17", "fusion_v17"}
    for entry in on_disk["models"].values():
        assert {"mean_f1", "std_f1", "seeds", "best_seed", "best_f1"} <= set(entry)
        assert entry["seeds"] == SEEDS
        run_keys = ["seed", "status", "reason", "best_epoch", "epochs_run", "test"]  # no wall_time_s
        assert all(list(run) == run_keys for run in entry["runs"])


def test_pngs_are_real_images(result):
    from matplotlib.image import imread

    for name in ("metrics_comparison.png", "f1_by_seed.png"):
        path = result["out"] / name
        data = path.read_bytes()
        assert len(data) > 1000 and data.startswith(PNG_MAGIC)
        height, width = imread(path).shape[:2]
        assert height > 100 and width > 100
    assert not [p for p in result["out"].iterdir() if p.name.startswith(".")]  # no temp files left


def test_markdown_has_table_rows(result):
    text = (result["out"] / "production_report.md").read_text()
    entry = result["summary"]["models"]["transformer_v17"]
    assert f"| transformer_v17 | 3 / 0 / 0 | {entry['mean_f1']:.4f} ± {entry['std_f1']:.4f} |" in text
    assert "| fusion_v17 | 2025 | collapsed |" in text
    assert "| gnn_v17 | 2025 | missing |" in text
    assert "**Best model:** `" + result["summary"]["best_overall_model"] + "`" in text
    assert "## Training stability" in text and "(metrics_comparison.png)" in text
    assert "Generated" not in text and "wall time (s)" not in text and "`run_log.json`" in text
    assert text.startswith("# StreamGuard production report\n\nSeeds: 42, 2025, 7.\n")


def test_training_stability_csv(result):
    with open(result["out"] / "training_stability.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert tuple(reader.fieldnames) == STABILITY_COLUMNS and "wall_time_s" not in STABILITY_COLUMNS
    assert [(r["model"], int(r["seed"])) for r in rows] == [
        (f"{m}_v17", s) for m in ("transformer", "gnn", "fusion") for s in SEEDS]
    row = next(r for r in rows if r["model"] == "transformer_v17" and r["seed"] == "2025")
    hist = result["runs"][("transformer", 2025)]["history"]
    grad = hist["grad_norm_before_clip"]
    assert int(row["final_epoch"]) == len(hist["epoch"])
    assert int(row["skipped_steps_total"]) == int(hist["skipped_steps"].sum())
    assert float(row["grad_norm_min"]) == pytest.approx(grad.min())
    assert float(row["grad_norm_max_over_min"]) == pytest.approx(grad.max() / grad.min())
    assert float(row["grad_norm_std"]) == pytest.approx(grad.std(ddof=1))
    assert (row["status"], row["collapsed"], row["nonfinite_loss_epochs"]) == ("ok", "false", "0")
    collapsed = next(r for r in rows if r["model"] == "fusion_v17" and r["seed"] == "2025")
    assert (collapsed["status"], collapsed["collapsed"]) == ("collapsed", "true")
    absent = next(r for r in rows if r["model"] == "gnn_v17" and r["seed"] == "2025")
    assert (absent["status"], absent["collapsed"], absent["final_epoch"], absent["history"]) == ("missing", "", "", "missing")
    corrupt = next(r for r in rows if r["model"] == "gnn_v17" and r["seed"] == "7")
    assert corrupt["status"] == "missing" and corrupt["final_epoch"] == "4"  # history still read


def _digests(root):
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(root.iterdir())}


def test_rerun_is_byte_identical(result, tmp_path):
    # The summary directory is a DVC out: the same runs must give the same bytes in every file, PNGs included.
    aggregate(result["outputs"], tmp_path / "again", models=MODELS, seeds=SEEDS)
    assert _digests(tmp_path / "again") == _digests(result["out"])
    assert set(_digests(result["out"])) == {"production_summary.json", "production_report.md", "training_stability.csv",
                                            "metrics_comparison.png", "f1_by_seed.png"}


def test_wall_times_in_older_run_files_stay_out_of_the_summary(scenario, tmp_path):
    # Runs written before wall times moved to run_log.json: the values are ignored, the output unchanged.
    old = tmp_path / "outputs"
    for src in scenario["outputs"].rglob("*"):
        if src.is_file():
            dst = old / src.relative_to(scenario["outputs"])
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(src.read_bytes())
    run = old / "transformer_v17" / "seed_42"
    write_json_atomic(run / "metrics.json", {**read_json(run / "metrics.json"), "wall_time_s": 12.5})
    header, *rows = (run / "metrics_history.csv").read_text().splitlines()
    (run / "metrics_history.csv").write_text("\n".join([header + ",seconds"] + [r + ",3.25" for r in rows]) + "\n")
    aggregate(old, tmp_path / "summary", models=MODELS, seeds=SEEDS)
    aggregate(scenario["outputs"], tmp_path / "reference", models=MODELS, seeds=SEEDS)
    assert _digests(tmp_path / "summary") == _digests(tmp_path / "reference")


def test_invalid_metrics_mark_run_missing(tmp_path):
    rng = np.random.default_rng(5)
    write_run(tmp_path, "gnn", 1, rng, test={**{m: 0.5 for m in METRICS}, "f1": 1.7})
    write_run(tmp_path, "gnn", 2, rng, status="finished")
    run3 = write_run(tmp_path, "gnn", 3, rng)
    write_json_atomic(run3["dir"] / "metrics.json", {**run3["metrics"], "seed": 99})
    run4 = write_run(tmp_path, "gnn", 4, rng)
    (run4["dir"] / "metrics.json").write_text('{"status": "ok", "test": {"f1": NaN}}')
    run5 = write_run(tmp_path, "gnn", 5, rng)
    (run5["dir"] / "metrics.json").unlink()
    reasons = {s: load_run(tmp_path, "gnn_v17", s) for s in (1, 2, 3, 4, 5)}
    assert all(r.status == "missing" for r in reasons.values())
    assert "test.f1" in reasons[1].reason
    assert "'status'" in reasons[2].reason
    assert "seed_3" in reasons[3].reason
    assert "NaN" in reasons[4].reason
    assert reasons[5].reason == "metrics.json not found"


def test_nothing_ok_still_writes_a_valid_summary(tmp_path):
    summary = aggregate(tmp_path / "nothing", tmp_path / "out", seeds=[1, 2], models=["gnn_v17"])
    entry = summary["models"]["gnn_v17"]
    assert (entry["n_missing"], entry["mean_f1"], entry["std_f1"], entry["best_seed"]) == (2, None, None, None)
    assert summary["best_overall_model"] is None
    assert read_json(tmp_path / "out" / "production_summary.json")["best_overall_f1"] is None


def test_mean_std_edge_cases():
    assert mean_std([]) == (None, None)
    assert mean_std([None, float("nan")]) == (None, None)
    assert mean_std([0.4]) == (0.4, 0.0)
    mean, std = mean_std([0.2, None, 0.6, 0.7])
    assert mean == pytest.approx(0.5) and std == pytest.approx(np.std([0.2, 0.6, 0.7], ddof=1))


@pytest.mark.parametrize("seeds", [[], [42, 42], [1.5]])
def test_bad_seed_plan_is_a_config_error(tmp_path, seeds):
    with pytest.raises(ConfigError, match="seeds"):
        aggregate(tmp_path, tmp_path / "out", models=MODELS, seeds=seeds)
    assert not (tmp_path / "out").exists()
