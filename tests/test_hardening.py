"""Faults and interrupts on the real entry points: the stage scripts in subprocesses, real signals,
a real full disk, real damaged files. See docs/hardening.md for the table these cases make."""
from __future__ import annotations

import gzip
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from streamguard.data.identity import dataset_hash

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = {"data": {"synthetic": {"n_functions": 120}}, "tokenizer": {"vocab_size": 300, "max_length": 64},
        "graph": {"max_nodes": 16, "workers": 1}}


def _stage_env() -> dict:
    return {**os.environ, "CI": "true", "PYTHONPATH": str(REPO), "TOKENIZERS_PARALLELISM": "false"}


def _workdir(root: pathlib.Path, params: dict) -> pathlib.Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def run_prepare(cwd: pathlib.Path, timeout: float = 120, prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*(prefix or []), sys.executable, str(REPO / "stages" / "prepare.py")], cwd=cwd,
                          env=_stage_env(), capture_output=True, text=True, timeout=timeout)


def error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error")]


def leftovers(data_dir: pathlib.Path) -> list[str]:
    return sorted(p.name for p in data_dir.iterdir() if p.name.startswith(".processed."))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[pathlib.Path, str]:
    """A work dir with a finished tiny data/processed and its hash."""
    cwd = _workdir(tmp_path_factory.mktemp("stage"), TINY)
    proc = run_prepare(cwd)
    assert proc.returncode == 0, proc.stderr
    return cwd, dataset_hash(cwd / "data" / "processed")


def _copy(prepared, tmp_path, params) -> pathlib.Path:
    cwd, _ = prepared
    work = tmp_path / "w"
    shutil.copytree(cwd, work)
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    return work


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _running(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# -- interrupts ------------------------------------------------------------------------------------

# From the signal to the exit of the stage, its pool workers included: under 2 s as a rule, so the limit
# guards against a hang (a worker left behind while the pool started once was one), not a slow exit.
INTERRUPT_TIMEOUT_S = 20


@pytest.mark.slow
@pytest.mark.skipif(not pathlib.Path("/proc/self/task").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("sig, code, line", [(signal.SIGINT, 130, "error: interrupted"),
                                             (signal.SIGTERM, 143, "error: interrupted (SIGTERM)")])
def test_interrupt_during_graph_building_exits_promptly_and_cleans_up(prepared, tmp_path, sig, code, line):
    # Enough functions that the train split is built in the process pool (min_parallel=2000).
    params = {**TINY, "data": {"synthetic": {"n_functions": 3200}}, "graph": {"max_nodes": 16, "workers": 2}}
    work = _copy(prepared, tmp_path, params)
    data = work / "data"
    proc = subprocess.Popen([sys.executable, str(REPO / "stages" / "prepare.py")], cwd=work, env=_stage_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            # a shell without job control starts background jobs with SIGINT ignored: undo that
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    workers: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:  # the pool is up: graphs are being built
        workers = _children(proc.pid)
        if len(workers) >= 2 and list(data.glob(".processed.tmp-*/tokenizer/tokenizer.json")):
            break
        time.sleep(0.02)
    assert proc.poll() is None and len(workers) >= 2, "prepare finished before the pool was seen"
    # Like a terminal's Ctrl-C, SIGINT goes to the whole process group (workers too); SIGTERM to the stage.
    os.killpg(proc.pid, sig) if sig == signal.SIGINT else proc.send_signal(sig)
    t = time.monotonic()
    _, stderr = proc.communicate(timeout=INTERRUPT_TIMEOUT_S)
    assert time.monotonic() - t < INTERRUPT_TIMEOUT_S
    assert proc.returncode == code, stderr
    assert error_lines(stderr) == [line]
    assert leftovers(data) == []
    assert dataset_hash(data / "processed") == prepared[1]
    time.sleep(0.5)
    assert not [w for w in workers if _running(w)], "pool workers outlived the stage"


def test_stale_temp_dirs_of_a_killed_prepare_are_removed_by_the_next(prepared, tmp_path):
    work = _copy(prepared, tmp_path, TINY)
    victim = subprocess.Popen(["sleep", "30"])
    (work / "data" / f".processed.tmp-{victim.pid}-abcdefgh" / "tokens").mkdir(parents=True)
    victim.kill()  # as kill -9 of a prepare leaves its temp dir
    victim.wait()
    proc = run_prepare(work)
    assert proc.returncode == 0, proc.stderr
    assert leftovers(work / "data") == []
    assert dataset_hash(work / "data" / "processed") == prepared[1]


# -- bad input and full disk -----------------------------------------------------------------------

def test_truncated_gzip_input_is_one_line_error_and_data_intact(prepared, tmp_path):
    rows = "".join(json.dumps({"func": f"int f{i}(void) {{ return {i}; }}", "target": i % 2, "idx": i}) + "\n"
                   for i in range(2000))
    work = _copy(prepared, tmp_path, {**TINY, "data": {"source": "files", "files": {"path": "fns.jsonl.gz"}}})
    blob = gzip.compress(rows.encode())
    (work / "fns.jsonl.gz").write_bytes(blob[: len(blob) // 2])
    proc = run_prepare(work)
    assert proc.returncode == 2
    [line] = error_lines(proc.stderr)
    assert line.startswith("error: fns.jsonl.gz: truncated or corrupt gzip data")
    assert line.endswith("data/processed was left as it was (if it is missing: dvc checkout data/processed)")
    assert dataset_hash(work / "data" / "processed") == prepared[1]


def _can_mount_tmpfs(where: pathlib.Path) -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs '{where}'"],
                           capture_output=True)
    return probe.returncode == 0


def test_full_disk_is_one_line_error_naming_the_file(tmp_path):
    """prepare onto a real 512 KiB file system (a private tmpfs mount): ENOSPC, one line, no traceback."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if not _can_mount_tmpfs(mnt):
        pytest.skip("needs unshare -m and tmpfs mounts (root or user namespaces)")
    work = _workdir(tmp_path / "w", {**TINY, "paths": {"processed": str(mnt / "processed")}})
    proc = run_prepare(work, prefix=["unshare", "-m", "sh", "-c",
                                     f"mount -t tmpfs -o size=512k tmpfs '{mnt}' && exec \"$0\" \"$@\""])
    assert proc.returncode == 2, proc.stderr
    [line] = error_lines(proc.stderr)
    assert line.startswith(f"error: {mnt}/.processed.tmp-") and "No space left on device" in line, line


# -- damaged checkpoints -----------------------------------------------------------------------------

def _truncate(path: pathlib.Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_truncated_backbone_is_an_error_and_the_fusion_run_is_kept(trained, tmp_path):
    from streamguard import runs
    from streamguard.errors import CorruptFileError
    _, processed, cfg, outputs = trained
    copy = tmp_path / "outputs"
    shutil.copytree(outputs, copy)
    backbone = runs.run_dir(copy, "gnn", 42) / "model_checkpoint.pt"
    _truncate(backbone)
    fusion = runs.run_dir(copy, "fusion", 42)
    fusion.mkdir(parents=True)
    (fusion / "metrics.json").write_text('{"status": "ok"}')  # the previous fusion run
    with pytest.raises(CorruptFileError) as err:
        runs.train_run("fusion", cfg, 42, copy, processed, lr_dir=outputs.parent / "lr")
    msg = str(err.value)
    assert msg.startswith(f"{backbone}: cannot load: truncated or corrupt") and "\n" not in msg
    assert (fusion / "metrics.json").read_text() == '{"status": "ok"}'
    assert sorted(p.name for p in fusion.iterdir()) == ["metrics.json"]


def test_truncated_own_checkpoint_is_an_error_not_a_finished_run(trained, tmp_path):
    from streamguard import runs
    _, processed, cfg, outputs = trained
    copy = tmp_path / "outputs"
    shutil.copytree(outputs, copy)
    run = runs.run_dir(copy, "gnn", 42)
    ckpt = run / "model_checkpoint.pt"
    _truncate(ckpt)
    damaged, before = ckpt.read_bytes(), sorted(p.name for p in run.iterdir())
    from streamguard.errors import CorruptFileError
    with pytest.raises(CorruptFileError) as err:
        runs.train_run("gnn", cfg, 42, copy, processed, lr_dir=outputs.parent / "lr")
    assert str(err.value).startswith(f"{ckpt}: cannot load: truncated or corrupt") and "\n" not in str(err.value)
    assert ckpt.read_bytes() == damaged and sorted(p.name for p in run.iterdir()) == before  # nothing deleted


# -- dvc repro ---------------------------------------------------------------------------------------

def _repo_copy(dst: pathlib.Path) -> None:
    """The working tree's files (tracked and new, not ignored ones like data/ or .venv) in a fresh git repo."""
    listed = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    subprocess.run(["git", "init", "-q"], cwd=dst, check=True)


@pytest.mark.slow
def test_failed_prepare_under_dvc_repro_keeps_the_previous_data(tmp_path):
    bindir = pathlib.Path(sys.executable).parent
    if not (bindir / "dvc").exists() or not shutil.which("git"):
        pytest.skip("needs dvc next to the interpreter and git")
    repo = tmp_path / "repo"
    _repo_copy(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["synthetic"]["n_functions"] = 120
    params["graph"]["workers"] = 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**_stage_env(), "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    dvc = lambda *a: subprocess.run([str(bindir / "dvc"), *a], cwd=repo, env=env, capture_output=True,  # noqa: E731
                                    text=True, timeout=300)
    first = dvc("repro", "prepare")
    assert first.returncode == 0, first.stderr + first.stdout
    before = dataset_hash(repo / "data" / "processed")
    (repo / "bad.jsonl").write_text('{"func": "int a;", "target": 0}\n{"func": "int b;"\n')
    params["data"]["source"] = "files"
    params["data"]["files"]["path"] = "bad.jsonl"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    failed = dvc("repro", "prepare")
    assert failed.returncode != 0
    assert "error: bad.jsonl:2: malformed JSON" in failed.stderr + failed.stdout
    assert "dvc checkout data/processed" in failed.stderr + failed.stdout
    assert dataset_hash(repo / "data" / "processed") == before  # DVC did not delete it before the run
    assert leftovers(repo / "data") == []
