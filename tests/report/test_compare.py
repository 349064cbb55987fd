"""The models against the baseline, from real prediction, metrics and split files on disk."""
from __future__ import annotations

import copy
import hashlib
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from streamguard.errors import ConfigError, DataError
from streamguard.io import read_json, write_json_atomic
from streamguard.report import SummaryValidationError, aggregate, validate_summary
from streamguard.report.compare import compare_runs, read_test_split, realistic_metrics
from streamguard.report.headline import headline
from streamguard.report.stats import mcnemar, paired_bootstrap_auc_diff
from streamguard.train.metrics import flagged_fraction, pairwise_metrics, precision_at_top_k, vd_s

from .conftest import SEEDS, write_baseline, write_predictions, write_run, write_test_split

MODELS = ["transformer_v17", "gnn_v17", "fusion_v17"]
N_BOOT = 300  # the stage uses 2000; fewer keeps the tests fast
N_PAIRS = 100


def _f32(x):
    return np.asarray(x, dtype=np.float32).astype(np.float64)  # what a reader of the .npy sees


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Synthetic test split of 100 vulnerable/safe pairs; fusion clearly beats a weak baseline, gnn's
    predictions are the baseline's own, transformer has no usable predictions at all."""
    root = tmp_path_factory.mktemp("compare")
    outputs = root / "outputs"
    rng = np.random.default_rng(7)
    labels = np.tile([1, 0], N_PAIRS)
    groups = [f"g{i // 2}" for i in range(labels.size)]
    split = write_test_split(root / "splits" / "test.jsonl", labels, groups)
    sign = 2 * labels - 1
    base = _f32(np.clip(0.5 + 0.08 * sign + rng.normal(0, 0.25, labels.size), 0, 1))
    write_baseline(outputs, base, threshold=0.5)
    preds = {}
    for seed in SEEDS:
        fusion = write_run(outputs, "fusion", seed, rng)
        preds[("fusion", seed)] = _f32(np.clip(0.5 + 0.3 * sign + rng.normal(0, 0.12, labels.size), 0, 1))
        write_predictions(fusion["dir"], preds[("fusion", seed)])
        gnn = write_run(outputs, "gnn", seed, rng)
        write_predictions(gnn["dir"], base)
    # fusion seed 7 chose a higher threshold on validation: McNemar and "flagged" must use it
    metrics_path = outputs / "fusion_v17" / "seed_7" / "metrics.json"
    write_json_atomic(metrics_path, {**read_json(metrics_path), "threshold": 0.6})
    short = write_run(outputs, "transformer", 42, rng)
    write_predictions(short["dir"], base[:-1])  # predictions of another (older) split
    write_run(outputs, "transformer", 2025, rng)  # a run from before predictions were saved
    collapsed = write_run(outputs, "transformer", 7, rng, status="collapsed", collapse_reason="one class")
    write_predictions(collapsed["dir"], np.full(labels.size, 0.5))
    out = root / "summary"
    summary = aggregate(outputs, out, models=MODELS, seeds=SEEDS, baseline_dir=outputs / "tfidf_lr",
                        test_split=split, n_boot=N_BOOT)
    return {"root": root, "outputs": outputs, "split": split, "labels": labels, "groups": groups, "base": base,
            "preds": preds, "out": out, "summary": summary}


def test_better_model_is_better(world):
    y, base = world["labels"], world["base"]
    rows = np.stack([world["preds"][("fusion", s)] for s in SEEDS])
    vs = world["summary"]["comparisons"]["fusion_v17"]["vs_baseline"]
    expected = np.mean([roc_auc_score(y, r) for r in rows]) - roc_auc_score(y, base)
    assert vs["diff"] == pytest.approx(expected, abs=1e-12) and vs["diff"] > 0.2
    assert 0 < vs["ci_low"] <= vs["ci_high"] and vs["outcome"] == "better"
    assert vs["p_value"] == 0.0 and (vs["n_boot"], vs["alpha"], vs["seeds"]) == (N_BOOT, 0.05, SEEDS)
    # the same call the summary is made of: the seeds as rows, the stage's fixed bootstrap seed 0
    boot = paired_bootstrap_auc_diff(y, rows, base, n_boot=N_BOOT, seed=0)
    assert (vs["ci_low"], vs["ci_high"]) == (boot["ci_low"], boot["ci_high"])
    assert vs["verdict"].startswith("fusion_v17 (mean over seeds 42, 2025, 7) vs TF-IDF + LR: ROC-AUC +")
    assert "): better; McNemar per seed at each side's chosen threshold: p" in vs["verdict"]


def test_mcnemar_per_seed_at_each_sides_threshold(world):
    y, base = world["labels"], world["base"]
    vs = world["summary"]["comparisons"]["fusion_v17"]["vs_baseline"]
    assert [m["seed"] for m in vs["mcnemar"]] == SEEDS
    for m in vs["mcnemar"]:
        threshold = 0.6 if m["seed"] == 7 else 0.5
        ref = mcnemar(y, (world["preds"][("fusion", m["seed"])] >= threshold).astype(int), (base >= 0.5).astype(int))
        assert m == {"seed": m["seed"], **{k: ref[k] for k in ("b", "c", "p_value", "method")}}
        assert m["b"] > m["c"] and m["p_value"] < 0.001
        assert f"(seed {m['seed']})" in vs["verdict"]
    run7 = world["summary"]["comparisons"]["fusion_v17"]["runs"][2]
    assert run7["threshold"] == 0.6
    assert run7["realistic"]["flagged_fraction"] == flagged_fraction(world["preds"][("fusion", 7)], 0.6)


def test_identical_predictions_are_not_distinguishable(world):
    vs = world["summary"]["comparisons"]["gnn_v17"]["vs_baseline"]
    assert (vs["diff"], vs["ci_low"], vs["ci_high"], vs["p_value"]) == (0.0, 0.0, 0.0, 1.0)
    assert vs["outcome"] == "not distinguishable" and "not distinguishable" in vs["verdict"]
    assert all((m["b"], m["c"], m["p_value"]) == (0, 0, 1.0) for m in vs["mcnemar"])


def test_realistic_metrics_per_run_and_means(world):
    y, groups = world["labels"], world["groups"]
    entry = world["summary"]["comparisons"]["fusion_v17"]
    assert entry["n_available"] == 3
    for run, seed in zip(entry["runs"], SEEDS):
        p, t = world["preds"][("fusion", seed)], run["threshold"]
        pairs = pairwise_metrics(y, p, groups, t)
        assert run["available"] and run["reason"] is None
        assert run["realistic"] == {
            "roc_auc": roc_auc_score(y, p), "vd_s": vd_s(y, p, 0.005),
            "precision_at_1pct": precision_at_top_k(y, p, 0.01), "precision_at_5pct": precision_at_top_k(y, p, 0.05),
            "flagged_fraction": flagged_fraction(p, t), "pair_accuracy": pairs["pair_accuracy"],
            "pair_vulnerable_only": pairs["pair_vulnerable_only"], "pair_safe_only": pairs["pair_safe_only"],
            "pair_reversed": pairs["pair_reversed"]}
    for key, mean in entry["realistic"].items():
        assert mean == pytest.approx(np.mean([r["realistic"][key] for r in entry["runs"]]))
    base = world["summary"]["baseline"]
    assert (base["model"], base["available"], base["threshold"]) == ("tfidf_lr", True, 0.5)
    assert base["realistic"]["vd_s"] == vd_s(y, world["base"]) and base["test"]["f1"] is not None
    settings = world["summary"]["statistics"]["comparison"]
    assert settings == {"n_boot": N_BOOT, "bootstrap_seed": 0, "alpha": 0.05,
                        "resampling": "paired, stratified by class", "vd_s_max_fpr": 0.005, "n_test": 2 * N_PAIRS, "n_test_positive": N_PAIRS,
                        "pairs": {"source": "group", "n_pairs": N_PAIRS, "n_ignored": 0}}


def test_unusable_predictions_are_marked_not_fatal(world):
    entry = world["summary"]["comparisons"]["transformer_v17"]
    assert entry["n_available"] == 0 and entry["vs_baseline"] is None
    assert all(v is None for v in entry["realistic"].values())
    reasons = {r["seed"]: r["reason"] for r in entry["runs"]}
    assert "shape [199]" in reasons[42] and "200 samples" in reasons[42]
    assert "no test_predictions.npy" in reasons[2025]
    assert "one class" in reasons[7]  # collapsed: its predictions are not used even though the file exists
    text = (world["out"] / "production_report.md").read_text()
    assert "`transformer_v17` seed 2025: no test_predictions.npy" in text
    assert "- transformer_v17: not compared (no run with usable test predictions)." in text


def test_report_table_sentences_and_settings(world):
    text = (world["out"] / "production_report.md").read_text()
    s = world["summary"]
    assert "## Against the baseline" in text
    assert ("| model | mean ROC-AUC | diff vs TF-IDF + LR [95 % CI] | p | McNemar p per seed | VD-S | P@1 % "
            "| flagged | pair accuracy |") in text
    assert f"| tfidf_lr (baseline) | {s['baseline']['realistic']['roc_auc']:.4f} | — | — | — |" in text
    fusion = s["comparisons"]["fusion_v17"]
    vs = fusion["vs_baseline"]
    row = (f"| fusion_v17 | {fusion['realistic']['roc_auc']:.4f} | {vs['diff']:+.3f} [{vs['ci_low']:+.3f}, "
           f"{vs['ci_high']:+.3f}] | p<0.0067 | 42: ")
    assert row in text
    assert f"- {vs['verdict']}" in text and f"- {s['comparisons']['gnn_v17']['vs_baseline']['verdict']}" in text
    assert f"({N_BOOT} resamples, seed 0, 95 % percentile interval" in text
    assert "100 vulnerable/safe pairs (by `group`)" in text


def test_headline_gains_baseline_and_comparison_figures(world):
    h = headline(world["summary"])
    s = world["summary"]
    assert list(h) == ["transformer", "gnn", "fusion", "tfidf_lr"]
    assert h["tfidf_lr"] == {m: s["baseline"]["test"][m] for m in ("roc_auc", "pr_auc", "f1", "accuracy")}
    assert h["fusion"]["auc_vs_baseline"] == s["comparisons"]["fusion_v17"]["vs_baseline"]["diff"]
    assert h["fusion"]["vd_s"] == s["comparisons"]["fusion_v17"]["realistic"]["vd_s"]
    assert h["transformer"]["auc_vs_baseline"] is None and h["transformer"]["vd_s"] is None
    assert set(h["gnn"]) == {"roc_auc", "pr_auc", "f1", "accuracy", "n_ok", "vd_s", "auc_vs_baseline"}


def _digests(root):
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(root.iterdir())}


def test_rerun_with_comparisons_is_byte_identical(world, tmp_path):
    aggregate(world["outputs"], tmp_path / "again", models=MODELS, seeds=SEEDS,
              baseline_dir=world["outputs"] / "tfidf_lr", test_split=world["split"], n_boot=N_BOOT)
    assert _digests(tmp_path / "again") == _digests(world["out"])
    on_disk = read_json(world["out"] / "production_summary.json")
    assert on_disk == json.loads(json.dumps(world["summary"]))
    assert list(on_disk)[-2:] == ["baseline", "comparisons"]


def test_baseline_bars_change_the_comparison_figure(world, tmp_path):
    # the same runs without the baseline draw a narrower figure: the baseline's bars are in the first
    aggregate(world["outputs"], tmp_path / "plain", models=MODELS, seeds=SEEDS, n_boot=N_BOOT)
    from matplotlib.image import imread

    with_base = imread(world["out"] / "metrics_comparison.png").shape[1]
    assert with_base > imread(tmp_path / "plain" / "metrics_comparison.png").shape[1]


def test_missing_baseline_means_no_comparison(world, tmp_path):
    summary = aggregate(world["outputs"], tmp_path / "out", models=MODELS, seeds=SEEDS,
                        baseline_dir=tmp_path / "tfidf_lr", test_split=world["split"], n_boot=N_BOOT)
    base = summary["baseline"]
    assert (base["available"], base["test"], base["realistic"]) == (False, None, None)
    assert "tfidf_lr not found" in base["reason"]
    assert all(e["vs_baseline"] is None for e in summary["comparisons"].values())
    assert summary["comparisons"]["fusion_v17"]["n_available"] == 3  # the models' own metrics are still there
    text = (tmp_path / "out" / "production_report.md").read_text()
    assert "No comparison with the baseline `tfidf_lr`: run missing: run directory tfidf_lr not found." in text
    assert "McNemar per seed" not in text
    assert headline(summary)["tfidf_lr"] == {"roc_auc": None, "pr_auc": None, "f1": None, "accuracy": None}


def test_baseline_without_predictions_is_unavailable(world, tmp_path):
    base_dir = tmp_path / "tfidf_lr"
    base_dir.mkdir()
    (base_dir / "metrics.json").write_bytes((world["outputs"] / "tfidf_lr" / "metrics.json").read_bytes())
    found = compare_runs(world["outputs"], ["fusion_v17"], SEEDS, test_split=world["split"], baseline_dir=base_dir,
                         n_boot=N_BOOT)
    assert found["baseline"]["available"] is False and found["baseline"]["test"] is not None
    assert "no test_predictions.npy" in found["baseline"]["reason"]
    assert found["comparisons"]["fusion_v17"]["vs_baseline"] is None


def test_no_baseline_given_gives_realistic_metrics_only(world, tmp_path):
    summary = aggregate(world["outputs"], tmp_path / "out", models=MODELS, seeds=SEEDS, test_split=world["split"],
                        n_boot=N_BOOT)
    assert "baseline" not in summary and summary["comparisons"]["fusion_v17"]["vs_baseline"] is None
    assert "tfidf_lr" not in headline(summary)
    assert "No baseline run was given" in (tmp_path / "out" / "production_report.md").read_text()
    with pytest.raises(ConfigError, match="test_split"):
        aggregate(world["outputs"], tmp_path / "x", models=MODELS, seeds=SEEDS,
                  baseline_dir=world["outputs"] / "tfidf_lr")


def test_without_a_test_split_the_summary_is_unchanged(world, tmp_path):
    summary = aggregate(world["outputs"], tmp_path / "out", models=MODELS, seeds=SEEDS)
    assert "comparisons" not in summary and "comparison" not in summary["statistics"]
    assert "## Against the baseline" not in (tmp_path / "out" / "production_report.md").read_text()


# --- pairs from the test split ------------------------------------------------------------------

def test_pair_field_wins_over_group(tmp_path):
    labels = [1, 0, 1, 0, 1]
    split = read_test_split(write_test_split(tmp_path / "t.jsonl", labels, groups=["a"] * 5, cwe=False,
                                             pairs=["p1", "p1", 7, 7, None]))
    assert (split.pair_source, split.pair_ids) == ("pair", ["p1", "p1", 7, 7, None])
    synthetic = read_test_split(write_test_split(tmp_path / "s.jsonl", labels, groups=["a", "a", "b", "b", "c"]))
    assert (synthetic.pair_source, synthetic.pair_ids) == ("group", ["a", "a", "b", "b", "c"])
    user = read_test_split(write_test_split(tmp_path / "u.jsonl", labels, groups=["a", "a", "b", "b", "c"], cwe=False))
    assert (user.pair_source, user.pair_ids) == (None, None)  # user groups are not pairs


def test_pair_accuracy_from_the_pair_field(tmp_path):
    # pairs (0,1), (2,3), (4,5): right, both flagged, reversed; sample 6 has no pair
    labels = [1, 0, 1, 0, 0, 1, 1]
    probs = [0.9, 0.1, 0.8, 0.7, 0.9, 0.2, 0.6]
    pairs = ["x", "x", "y", "y", "z", "z", None]
    outputs = tmp_path / "outputs"
    split = write_test_split(tmp_path / "test.jsonl", labels, cwe=False, pairs=pairs)
    run = write_run(outputs, "gnn", 1, np.random.default_rng(0))
    write_predictions(run["dir"], probs)
    write_baseline(outputs, np.linspace(0, 1, len(labels)))
    found = compare_runs(outputs, ["gnn_v17"], [1], test_split=split, baseline_dir=outputs / "tfidf_lr", n_boot=50)
    r = found["comparisons"]["gnn_v17"]["runs"][0]["realistic"]
    assert (r["pair_accuracy"], r["pair_vulnerable_only"], r["pair_reversed"], r["pair_safe_only"]) == (
        pytest.approx(1 / 3), pytest.approx(1 / 3), pytest.approx(1 / 3), 0.0)
    assert found["settings"]["pairs"] == {"source": "pair", "n_pairs": 3, "n_ignored": 0}


def test_no_pairs_means_no_pairwise_metrics(tmp_path):
    labels = [1, 0, 1, 0]
    split = write_test_split(tmp_path / "test.jsonl", labels, cwe=False)
    outputs = tmp_path / "outputs"
    run = write_run(outputs, "gnn", 1, np.random.default_rng(0))
    write_predictions(run["dir"], [0.9, 0.2, 0.6, 0.4])
    found = compare_runs(outputs, ["gnn_v17"], [1], test_split=split, n_boot=20)
    assert found["settings"]["pairs"] is None and found["baseline"] is None
    r = found["comparisons"]["gnn_v17"]["runs"][0]["realistic"]
    assert r["pair_accuracy"] is None and r["roc_auc"] == 1.0


def test_realistic_metrics_single_class_are_null_not_nan():
    r = realistic_metrics([1, 1, 1], np.array([0.2, 0.5, 0.9]), 0.5, None)
    assert r["roc_auc"] is None and r["vd_s"] is None and r["flagged_fraction"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("line, match", [
    ('{"id": "a", "label": 2}', "field 'label'"),
    ('{"id": "a", "label": 1', "invalid JSON"),
    ('[1, 0]', "expected a JSON object"),
])
def test_bad_test_split_is_a_data_error_naming_the_line(tmp_path, line, match):
    path = tmp_path / "test.jsonl"
    path.write_text('{"id": "ok", "label": 0}\n' + line + "\n")
    with pytest.raises(DataError, match=match) as info:
        read_test_split(path)
    assert f"{path}:2" in str(info.value)


def test_bad_prediction_files_are_unavailable(tmp_path):
    labels = [1, 0, 1, 0]
    split = write_test_split(tmp_path / "test.jsonl", labels)
    outputs = tmp_path / "outputs"
    rng = np.random.default_rng(0)
    bad = {1: np.array([0.1, np.nan, 0.3, 0.4]), 2: np.array([0.5, 2.0, 3.0, -1.0]), 3: np.zeros((2, 2))}
    for seed, probs in bad.items():
        run = write_run(outputs, "gnn", seed, rng)
        write_predictions(run["dir"], probs)
    run = write_run(outputs, "gnn", 4, rng)
    (run["dir"] / "test_predictions.npy").write_bytes(b"not an npy file")
    run = write_run(outputs, "gnn", 5, rng)
    write_json_atomic(run["dir"] / "metrics.json", {**run["metrics"], "threshold": None})
    write_predictions(run["dir"], [0.1, 0.2, 0.3, 0.4])
    found = compare_runs(outputs, ["gnn_v17"], [1, 2, 3, 4, 5, 6], test_split=split, n_boot=20)
    reasons = [r["reason"] for r in found["comparisons"]["gnn_v17"]["runs"]]
    assert "NaN or inf" in reasons[0] and "outside [0, 1]" in reasons[1] and "shape [2, 2]" in reasons[2]
    assert "unreadable" in reasons[3] and "'threshold'" in reasons[4] and "run missing" in reasons[5]


# --- the schema -----------------------------------------------------------------------------------

def _vs(s, model="fusion_v17"):
    return s["comparisons"][model]["vs_baseline"]


@pytest.mark.parametrize("breakage, field", [
    (lambda s: _vs(s).__setitem__("outcome", "worse"), "vs_baseline.outcome"),
    (lambda s: _vs(s).__setitem__("ci_low", _vs(s)["ci_high"] + 0.01), "vs_baseline"),
    (lambda s: _vs(s)["mcnemar"][0].__setitem__("method", "z"), "mcnemar[0].method"),
    (lambda s: _vs(s)["mcnemar"].pop(), "vs_baseline"),
    (lambda s: _vs(s).__setitem__("p_value", 1.5), "vs_baseline.p_value"),
    (lambda s: _vs(s).pop("verdict"), "vs_baseline"),
    (lambda s: _vs(s).__setitem__("diff", None), "vs_baseline"),
    (lambda s: _vs(s).__setitem__("n_boot", 7), "vs_baseline.n_boot"),
    (lambda s: s["comparisons"]["fusion_v17"].__setitem__("vs_baseline", None), "vs_baseline"),
    (lambda s: s["comparisons"]["transformer_v17"].__setitem__("vs_baseline", copy.deepcopy(_vs(s))), "vs_baseline"),
    (lambda s: s["comparisons"]["gnn_v17"].__setitem__("wall_time_s", 1.0), "comparisons.gnn_v17"),
    (lambda s: s["comparisons"]["gnn_v17"]["runs"][0].__setitem__("reason", "x"), "runs[0].reason"),
    (lambda s: s["comparisons"]["gnn_v17"]["runs"][1]["realistic"].__setitem__("vd_s", -0.1), "realistic.vd_s"),
    (lambda s: s["comparisons"]["gnn_v17"].__setitem__("n_available", 2), "n_available"),
    (lambda s: s["comparisons"].pop("gnn_v17"), "comparisons"),
    (lambda s: s["statistics"].pop("comparison"), "comparisons"),
    (lambda s: s["statistics"]["comparison"].__setitem__("resampling", "unpaired"), "resampling"),
    (lambda s: s["baseline"].__setitem__("available", False), "baseline"),
])
def test_schema_rejects_a_malformed_comparison(world, breakage, field):
    validate_summary(world["summary"])
    broken = copy.deepcopy(world["summary"])
    breakage(broken)
    with pytest.raises(SummaryValidationError) as info:
        validate_summary(broken, source="summary.json")
    message = str(info.value)
    assert message.startswith("summary.json: field '") and field in message and "\n" not in message
