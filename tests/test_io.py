"""Strict JSON, atomic writes and weights_only checkpoints (streamguard/io.py)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import errno
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from streamguard import io as sgio
from streamguard.errors import CheckpointError, SerializationError

REPO = pathlib.Path(__file__).resolve().parents[1]


@dataclasses.dataclass
class Inner:
    lr: float
    device: torch.device


@dataclasses.dataclass
class Outer:
    name: str
    inner: Inner
    tags: tuple


class Color(enum.Enum):
    RED = "red"


def test_tensors_become_plain_values():
    grad = torch.tensor([1.5, 2.5], requires_grad=True) * 2  # non-leaf with grad history
    out = sgio.safe_jsonify({
        "scalar": torch.tensor(0.25),
        "grad": grad,
        "int": torch.tensor([[1, 2], [3, 4]], dtype=torch.int64),
        "bf16": torch.tensor([0.5], dtype=torch.bfloat16),
        "bool": torch.tensor([True, False]),
    })
    assert out == {"scalar": 0.25, "grad": [3.0, 5.0], "int": [[1, 2], [3, 4]], "bf16": [0.5], "bool": [True, False]}
    assert json.loads(json.dumps(out)) == out  # plain types only: survives a JSON round trip unchanged


def test_tensor_is_moved_to_cpu_before_conversion():
    # Runs everywhere: a tensor subclass records that the conversion goes through .cpu().
    calls = []

    class Tracked(torch.Tensor):
        def cpu(self, *a, **k):
            calls.append("cpu")
            return super().cpu(*a, **k)

    t = torch.tensor([1.0, 2.0]).as_subclass(Tracked)
    assert sgio.safe_jsonify(t) == [1.0, 2.0]
    assert calls == ["cpu"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensor_with_grad_becomes_plain_values():
    assert sgio.safe_jsonify(torch.tensor([1.0], device="cuda", requires_grad=True)) == [1.0]


def test_numpy_path_device_dtype_dataclass_collections_datetime():
    value = {
        "arr": np.arange(3, dtype=np.int32),
        "f32": np.float32(0.5),
        "i64": np.int64(7),
        "bool": np.bool_(True),
        "path": pathlib.Path("a/b.json"),
        "device": torch.device("cpu"),
        "dtype": torch.float16,
        "dc": Outer("x", Inner(0.1, torch.device("cpu")), (1, 2)),
        "tuple": (1, "a"),
        "set": {3, 1, 2},
        "when": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc),
        "day": dt.date(2024, 5, 1),
        "enum": Color.RED,
        np.int64(5): "numpy key",
    }
    out = sgio.safe_jsonify(value)
    assert out["arr"] == [0, 1, 2] and out["f32"] == 0.5 and out["i64"] == 7 and out["bool"] is True
    assert out["path"] == str(pathlib.Path("a/b.json"))
    assert out["device"] == "cpu" and out["dtype"] == "torch.float16"
    assert out["dc"] == {"name": "x", "inner": {"lr": 0.1, "device": "cpu"}, "tags": [1, 2]}
    assert out["tuple"] == [1, "a"] and out["set"] == [1, 2, 3]
    assert out["when"] == "2024-05-01T12:30:00+00:00" and out["day"] == "2024-05-01"
    assert out["enum"] == "red" and out["5"] == "numpy key"
    assert type(out["i64"]) is int and type(out["f32"]) is float


def test_deep_nesting():
    value: dict = {"leaf": np.float64(1.0)}
    for i in range(200):
        value = {"k": [value, i]}
    out = sgio.safe_jsonify(value)
    depth = 0
    while "k" in out:
        out = out["k"][0]
        depth += 1
    assert depth == 200 and out == {"leaf": 1.0}


def test_unserializable_value_names_its_key_path():
    value = {"runs": [{"lr": 0.1}, {"lr": 0.2}, {"lr": object()}]}
    with pytest.raises(SerializationError, match=re.escape("runs[2].lr")):
        sgio.safe_jsonify(value)
    with pytest.raises(SerializationError, match=re.escape("a.b")):
        sgio.dumps_strict({"a": {"b": b"bytes"}})
    with pytest.raises(SerializationError, match="key"):
        sgio.safe_jsonify({("tuple", "key"): 1})


def test_nonfinite_becomes_null_and_path_is_reported(tmp_path, caplog):
    value = {"m": {"f1": float("nan"), "auc": np.float32(np.inf)}, "hist": torch.tensor([1.0, -float("inf")])}
    paths: list[str] = []
    out = sgio.safe_jsonify(value, nonfinite=paths)
    assert out == {"m": {"f1": None, "auc": None}, "hist": [1.0, None]}
    assert paths == ["m.f1", "m.auc", "hist[1]"]

    target = tmp_path / "metrics.json"
    with caplog.at_level("WARNING", logger="streamguard.io"):
        reported = sgio.write_json_atomic(target, value)
    assert reported == paths
    assert "m.f1" in caplog.text
    text = target.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert sgio.read_json(target) == out


def test_strict_reader_rejects_bare_nan(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"x": NaN}')
    with pytest.raises(ValueError, match="NaN"):
        sgio.read_json(bad)


def _leftovers(directory: pathlib.Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_keeps_original_when_replace_fails(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    sgio.write_json_atomic(target, {"version": 1})

    def broken_replace(src, dst):
        raise OSError("disk went away")

    monkeypatch.setattr(sgio.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk went away"):
        sgio.write_json_atomic(target, {"version": 2})
    assert sgio.read_json(target) == {"version": 1}
    assert _leftovers(tmp_path) == []


def test_atomic_write_keeps_original_when_writer_raises_midway(tmp_path):
    target = tmp_path / "data.txt"
    sgio.write_text_atomic(target, "original\n")
    with pytest.raises(RuntimeError, match="serializer failed"):
        with sgio.atomic_write(target) as fh:
            fh.write("half of the new conte")
            raise RuntimeError("serializer failed")
    assert target.read_text() == "original\n"
    assert _leftovers(tmp_path) == []


def test_bad_json_value_never_touches_the_file(tmp_path):
    target = tmp_path / "m.json"
    sgio.write_json_atomic(target, {"ok": True})
    with pytest.raises(SerializationError):
        sgio.write_json_atomic(target, {"ok": object()})
    assert sgio.read_json(target) == {"ok": True}
    assert _leftovers(tmp_path) == []


def test_torch_save_atomic_failure_keeps_checkpoint(tmp_path, monkeypatch):
    target = tmp_path / "model_checkpoint.pt"
    sgio.save_torch_atomic(target, {"w": torch.ones(2)})
    monkeypatch.setattr(sgio.os, "replace", lambda s, d: (_ for _ in ()).throw(OSError("boom")))
    with pytest.raises(OSError):
        sgio.save_torch_atomic(target, {"w": torch.zeros(2)})
    assert torch.equal(sgio.load_torch(target)["w"], torch.ones(2))
    assert _leftovers(tmp_path) == []


def test_written_files_follow_the_umask(tmp_path, monkeypatch):
    # A umask unlike the usual 022 (and unlike mkstemp's private 0600), so the check holds on any machine.
    monkeypatch.setattr(sgio, "_UMASK", 0o027)
    target = tmp_path / "m.json"
    sgio.write_json_atomic(target, {"a": 1})
    assert target.stat().st_mode & 0o777 == 0o640


def test_write_disabled_leaves_no_file(tmp_path):
    target = tmp_path / "rank1.json"
    sgio.set_write_enabled(False)
    try:
        sgio.write_json_atomic(target, {"a": 1})
        assert sgio.call_rank0(lambda: "ran") is None
    finally:
        sgio.set_write_enabled(True)
    assert not target.exists()
    assert sgio.call_rank0(lambda: "ran") == "ran"


class NotAllowed:
    """A picklable class that weights_only loading must refuse."""


def test_load_torch_is_weights_only_and_names_the_file(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"obj": NotAllowed()}, path)
    with pytest.raises(CheckpointError, match="evil.pt"):
        sgio.load_torch(path)
    with pytest.raises(CheckpointError, match="not found"):
        sgio.load_torch(tmp_path / "missing.pt")


def test_numpy_atomic_roundtrip(tmp_path):
    path = tmp_path / "oof.npy"
    sgio.save_numpy_atomic(path, np.arange(6, dtype=np.float32).reshape(2, 3))
    assert np.array_equal(np.load(path, allow_pickle=False), np.arange(6, dtype=np.float32).reshape(2, 3))


def test_no_numpy_conversion_without_detach_in_library_code():
    """Same check as `grep -rn "\\.numpy()" streamguard stages | grep -v detach`."""
    offenders, scanned = [], 0
    for top in ("streamguard", "stages"):
        for path in sorted((REPO / top).rglob("*.py")):
            scanned += 1
            for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if ".numpy()" in line and "detach" not in line:
                    offenders.append(f"{path.relative_to(REPO)}:{lineno}: {line.strip()}")
    assert scanned > 20  # the library was found: an empty search would pass vacuously
    assert offenders == []


def test_no_tmp_leftover_after_success(tmp_path):
    sgio.write_text_atomic(tmp_path / "a.txt", "x")
    assert sorted(os.listdir(tmp_path)) == ["a.txt"]


@pytest.mark.parametrize("damage, reason", [
    ("truncated", "truncated or corrupt"),
    ("pickle", "an object of type"),
])
def test_load_errors_are_one_line_and_never_suggest_weights_only_false(tmp_path, damage, reason):
    path = tmp_path / "model_checkpoint.pt"
    if damage == "truncated":
        sgio.save_torch_atomic(path, {"w": torch.ones(1000)})
        path.write_bytes(path.read_bytes()[:3000])
    else:
        torch.save({"obj": NotAllowed()}, path)
    with pytest.raises(CheckpointError) as err:
        sgio.load_torch(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: cannot load: ") and reason in msg
    assert "\n" not in msg and "weights_only" not in msg


def test_disk_errors_are_one_line_naming_the_file_and_keep_the_original(tmp_path):
    """A real failing write (the file-size limit makes write() fail with EFBIG, as a full disk fails
    with ENOSPC) in a child process: one WriteError naming the target, still an OSError."""
    target = tmp_path / "out.txt"
    target.write_text("original")
    script = (
        "import resource, signal, sys\n"
        "from streamguard import io as sgio\n"
        "from streamguard.errors import WriteError\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "try:\n"
        "    sgio.write_text_atomic(sys.argv[1], 'x' * 100000)\n"
        "except WriteError as exc:\n"
        "    print(isinstance(exc, OSError), exc.errno, exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True, text=True, cwd=REPO,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    is_oserror, errno_, msg = proc.stdout.strip().split(" ", 2)
    assert is_oserror == "True" and int(errno_) == errno.EFBIG
    assert msg == f"{target}: cannot write (File too large)"
    assert target.read_text() == "original"
    assert _leftovers(tmp_path) == []
