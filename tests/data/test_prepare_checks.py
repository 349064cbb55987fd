"""prepare refuses data it cannot train or evaluate on, warns about weak data, and swaps its output safely."""
import json
import logging
import os
import subprocess

import pytest

from streamguard.data.identity import dataset_hash
from streamguard.data.pipeline import prepare
from streamguard.data.swap import clean_stale, replace_dir
from streamguard.errors import DataError

from ..fixtures import make_processed, tiny_config


def _fn(i):
    return f"int f{i}(int a) {{ int b = a * {i}; if (b > {i}) return b; return a + {i}; }}"


def _write(path, labels, start=0):
    path.write_text("".join(json.dumps({"func": _fn(start + i), "target": y, "idx": start + i}) + "\n"
                            for i, y in enumerate(labels)))
    return str(path)


def _official(tmp_path, train, valid, test):
    files = {}
    start = 0
    for name, labels in (("train", train), ("valid", valid), ("test", test)):
        files[f"data.files.{name}"] = _write(tmp_path / f"{name}.jsonl", labels, start)
        start += len(labels)
    return tiny_config(**{"data.source": "files", **files, "tokenizer.vocab_size": 300})


@pytest.mark.parametrize("split, message", [
    ("train", r"the train split holds only safe samples \(60\): a model cannot learn from one class"),
    ("valid", r"the valid split holds only safe samples \(60\): the decision threshold and ROC-AUC need both"),
    ("test", r"the test split holds only safe samples \(60\): ROC-AUC"),
])
def test_one_class_split_is_refused_and_output_untouched(tmp_path, split, message):
    labels = {s: [i % 2 for i in range(60)] for s in ("train", "valid", "test")}
    labels[split] = [0] * 60
    cfg = _official(tmp_path, labels["train"], labels["valid"], labels["test"])
    out = tmp_path / "processed"
    out.mkdir()
    (out / "keep").write_text("previous")
    with pytest.raises(DataError, match=message) as err:
        prepare(cfg, out)
    assert "\n" not in str(err.value)
    assert [p.name for p in out.iterdir()] == ["keep"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".processed")]


def test_all_one_class_single_file_is_refused(tmp_path):
    cfg = tiny_config(**{"data.source": "files", "data.files.path": _write(tmp_path / "all.jsonl", [1] * 200)})
    with pytest.raises(DataError, match="the train split holds only vulnerable samples"):
        prepare(cfg, tmp_path / "processed")


def test_tiny_splits_warn_and_are_recorded(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="streamguard.data")
    cfg = _official(tmp_path, [i % 2 for i in range(16)], [0, 1], [1, 0])
    stats = prepare(cfg, tmp_path / "processed")
    assert [w.split(" has")[0] for w in stats["warnings"]] == ["the train split", "the valid split", "the test split"]
    recorded = json.loads((tmp_path / "processed" / "dataset_stats.json").read_text())
    assert recorded["warnings"] == stats["warnings"]
    assert "the valid split has only 2 samples" in caplog.text


def test_default_sized_data_has_no_warnings_key(tmp_path):
    out, _ = make_processed(tmp_path, **{"data.synthetic.n_functions": 600})
    assert "warnings" not in json.loads((out / "dataset_stats.json").read_text())


def _dead_pid():
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_stale_siblings_of_dead_processes_are_cleaned_and_a_cut_swap_restored(tmp_path):
    out = tmp_path / "processed"
    dead = _dead_pid()
    old = tmp_path / f".processed.old-{dead}"
    old.mkdir()
    (old / "dataset_stats.json").write_text("the previous data")
    for name in (f".processed.tmp-{dead}-ab12cd34", ".processed.tmp-x1y2z3w4"):  # new and legacy names
        (tmp_path / name).mkdir()
    alive = tmp_path / f".processed.tmp-{os.getppid()}-qwertyui"  # a running process's: left alone
    alive.mkdir()
    clean_stale(out)
    assert (out / "dataset_stats.json").read_text() == "the previous data"  # the old copy put back
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["processed", alive.name])


def test_swap_rolls_back_when_the_second_rename_fails(tmp_path):
    out = tmp_path / "processed"
    out.mkdir()
    (out / "a").write_text("old")
    with pytest.raises(FileNotFoundError):
        replace_dir(tmp_path / ".processed.tmp-gone", out)  # the new copy vanished: the rename fails
    assert (out / "a").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["processed"]


def test_prepare_replaces_stale_content_entirely(tmp_path):
    fresh, _ = make_processed(tmp_path / "fresh")
    out, cfg = make_processed(tmp_path / "reused")
    (out / "stale.txt").write_text("left by an older prepare")
    prepare(cfg, out)
    assert not (out / "stale.txt").exists()
    assert dataset_hash(out) == dataset_hash(fresh)
