from __future__ import annotations

import copy
import csv

import numpy as np
import pytest

from streamguard.io import write_json_atomic
from streamguard.report import SummaryValidationError, aggregate, validate_outputs, validate_summary

from .conftest import SEEDS, write_run

MODELS = ["transformer_v17", "gnn_v17", "fusion_v17"]  # run-directory names, as the stage passes them


@pytest.fixture(scope="module")
def good_summary(scenario):
    return aggregate(scenario["outputs"], scenario["out"], models=MODELS, seeds=SEEDS)


def test_good_summary_validates(good_summary):
    assert set(good_summary["models"]) == {"transformer_v17", "gnn_v17", "fusion_v17"}
    validate_summary(good_summary)  # raises on failure


@pytest.mark.parametrize("breakage, field", [
    (lambda s: s["models"]["gnn_v17"].pop("mean_f1"), "models.gnn_v17"),
    (lambda s: s["models"]["fusion_v17"].__setitem__("std_f1", -0.1), "models.fusion_v17.std_f1"),
    (lambda s: s["models"]["transformer_v17"]["runs"][0].__setitem__("status", "done"), "runs[0].status"),
    (lambda s: s["models"]["transformer_v17"]["runs"][0].update(status="collapsed", reason=None), "runs[0].reason"),
    (lambda s: s.pop("seeds"), "<root>"),
    # run-varying values have no place in the summary (it is a DVC out)
    (lambda s: s.__setitem__("timestamp", "2025-01-02T03:04:05+00:00"), "<root>"),
    (lambda s: s["models"]["gnn_v17"]["runs"][0].__setitem__("wall_time_s", 12.5), "runs[0]"),
    (lambda s: s.__setitem__("best_overall_f1", float("nan")), "best_overall_f1"),
    (lambda s: s.__setitem__("best_overall_model", "svm_v17"), "best_overall_model"),
    (lambda s: s["models"]["gnn_v17"].__setitem__("n_ok", 3), "models.gnn_v17"),
])
def test_broken_summary_fails_with_named_field(good_summary, breakage, field):
    broken = copy.deepcopy(good_summary)
    breakage(broken)
    with pytest.raises(SummaryValidationError) as info:
        validate_summary(broken, source="summary.json")
    message = str(info.value)
    assert message.startswith("summary.json: field '") and field in message and "\n" not in message


def test_missing_mean_f1_message_names_the_property(good_summary):
    broken = copy.deepcopy(good_summary)
    del broken["models"]["gnn_v17"]["mean_f1"]
    with pytest.raises(SummaryValidationError, match="'mean_f1' is a required property"):
        validate_summary(broken)


def test_scenario_tree_flags_only_its_truncated_metrics(scenario, good_summary):
    tree = scenario["outputs"]
    corrupt = tree / "gnn_v17" / "seed_7" / "metrics.json"  # the scenario's deliberate truncation
    problems = validate_outputs(tree)
    assert len(problems) == 1 and problems[0].startswith(f"{corrupt}:"), problems
    assert validate_outputs(scenario["out"]) == []  # the summary aggregate wrote from that tree


@pytest.fixture
def clean_tree(tmp_path):
    rng = np.random.default_rng(9)
    for model in ("transformer", "gnn"):
        write_run(tmp_path, model, 42, rng)
    return tmp_path


def test_clean_tree_passes(clean_tree):
    checked = sorted(p.relative_to(clean_tree).as_posix() for p in clean_tree.rglob("*") if p.is_file())
    assert checked == [f"{m}_v17/seed_42/{name}" for m in ("gnn", "transformer")
                       for name in ("metrics.json", "metrics_history.csv")]  # real files, not an empty tree
    assert validate_outputs(clean_tree) == []


def test_bare_nan_in_json_is_flagged(clean_tree):
    path = clean_tree / "gnn_v17" / "seed_42" / "training_metadata.json"
    path.write_text('{"lr": 0.001, "test": {"f1": NaN, "loss": -Infinity}}\n')
    problems = validate_outputs(clean_tree)
    assert len(problems) == 2
    assert all(p.startswith(f"{path}: ") for p in problems)
    assert "field 'test.f1': non-finite number NaN" in problems[0]
    assert "field 'test.loss': non-finite number -Infinity" in problems[1]


def test_syntax_error_and_stringified_tensor_are_flagged(clean_tree):
    bad = clean_tree / "bad.json"
    bad.write_text('{\n  "a": 1,\n  "b": \n}\n')
    tensor = clean_tree / "gnn_v17" / "seed_42" / "gradient_stats.json"
    write_json_atomic(tensor, {"norms": [1.0, 2.0], "last": "tensor(0.5000)"})
    problems = validate_outputs(clean_tree)
    assert len(problems) == 2
    assert problems[0].startswith(f"{bad}:4: invalid JSON")
    assert problems[1].startswith(f"{tensor}: field 'last': looks like a serialized tensor")


def test_nan_loss_in_history_is_flagged_with_row_and_column(clean_tree):
    path = clean_tree / "transformer_v17" / "seed_42" / "metrics_history.csv"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows[2]["val_loss"] = "nan"
    rows[0]["train_loss"] = ""
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    problems = validate_outputs(clean_tree)
    assert problems == [
        f"{path}:2: column 'train_loss' is empty (epoch 1); losses must be finite",
        f"{path}:4: column 'val_loss' is 'nan' (epoch 3); losses must be finite",
    ]


def test_history_without_loss_column_is_flagged(clean_tree):
    path = clean_tree / "gnn_v17" / "seed_42" / "metrics_history.csv"
    path.write_text("epoch,val_loss\n1,0.5\n")
    assert validate_outputs(clean_tree) == [f"{path}:1: missing column(s) train_loss"]


def test_hidden_temp_files_and_other_csvs_are_ignored(clean_tree):
    (clean_tree / "gnn_v17" / ".metrics.json.abc.tmp.json").write_text("{NaN")
    (clean_tree / "lr_curve.csv").write_text("lr,train_loss\n0.1,nan\n")
    assert validate_outputs(clean_tree) == []


def test_missing_root_is_one_problem(tmp_path):
    assert validate_outputs(tmp_path / "nope") == [f"{tmp_path / 'nope'}: directory not found"]
