"""Run every fault / bad-input case against the stage scripts and print the table of docs/hardening.md.

    python bench/bench_hardening.py [--only LABEL_PART ...]

Each case runs in a fresh temporary work directory (params.yaml + a finished tiny data/processed) and
records the exit code, the first `error` line of the output (else the first WARNING, else the
last line) and whether the previous outputs are still intact (data/processed has its DVC hash, a
damaged checkpoint is still there and nothing of the previous run was deleted). Needs Linux; the
full-disk case needs `unshare -m` with tmpfs mounts (root or user namespaces) and is skipped
otherwise; the `dvc repro` case needs dvc and git.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import pathlib
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamguard.data.identity import dataset_hash  # noqa: E402

TINY = {"data": {"synthetic": {"n_functions": 120}}, "tokenizer": {"vocab_size": 300, "max_length": 64},
        "graph": {"max_nodes": 16, "workers": 1},
        "transformer": {"hidden_size": 32, "num_heads": 2, "intermediate_size": 64, "epochs": 1},
        "gnn": {"hidden_size": 32, "epochs": 1}, "fusion": {"hidden_size": 32, "epochs": 1, "oof_folds": 2,
                                                            "oof_epochs": 1}}
ENV = {**os.environ, "CI": "true", "PYTHONPATH": str(REPO), "TOKENIZERS_PARALLELISM": "false",
       "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
PREPARE = [sys.executable, str(REPO / "stages" / "prepare.py")]
TRAIN = [sys.executable, str(REPO / "stages" / "train.py")]


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(base.get(k, {}), v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


class Work:
    """A temporary work dir: params.yaml, a finished data/processed, optionally trained backbones."""

    def __init__(self, root: pathlib.Path, template: pathlib.Path):
        self.dir = root
        shutil.copytree(template, root)
        self.hash = dataset_hash(root / "data" / "processed")

    def params(self, over: dict) -> None:
        (self.dir / "params.yaml").write_text(yaml.safe_dump(merge(TINY, over)))

    def run(self, cmd: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, cwd=self.dir, env=ENV, capture_output=True, text=True, timeout=timeout)

    def data_intact(self) -> bool:
        d = self.dir / "data"
        try:
            same = dataset_hash(d / "processed") == self.hash
        except Exception:
            return False
        return same and not [p for p in d.iterdir() if p.name.startswith(".processed.")]


def first_line(out: str) -> str:
    """The first `error` line, else the first WARNING, else the last line."""
    lines = [line for line in out.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error")]
    warnings = [line.split(": ", 1)[-1] for line in lines if " WARNING " in line]
    return (errors or warnings or lines[-1:] or [""])[0]


def bad_file(w: Work, name: str, content: bytes, fields: dict | None = None) -> list[str]:
    (w.dir / name).write_bytes(content)
    files = {"path": name, **({"fields": fields} if fields else {})}
    w.params({"data": {"source": "files", "files": files}})
    return PREPARE


def rows(n: int, label=lambda i: i % 2, idx=lambda i: i, start: int = 0) -> bytes:
    return "".join(json.dumps({"func": f"int f{i}(int a) {{ return a + {i}; }}", "target": label(i - start),
                               "idx": idx(i)}) + "\n" for i in range(start, start + n)).encode()


def official(w: Work, sizes: dict[str, int], one_class: str | None = None) -> list[str]:
    files, start = {}, 0
    for split, n in sizes.items():
        data = rows(n, label=(lambda i: 0) if split == one_class else (lambda i: i % 2), start=start)
        (w.dir / f"{split}.jsonl").write_bytes(data)
        files[split] = f"{split}.jsonl"
        start += n
    w.params({"data": {"source": "files", "files": files}})
    return PREPARE


def interrupted(w: Work, sig: int) -> tuple[int, str]:
    w.params({"data": {"synthetic": {"n_functions": 3200}}, "graph": {"workers": 2}})
    # A shell without job control starts background jobs with SIGINT ignored, which the child would inherit.
    proc = subprocess.Popen(PREPARE, cwd=w.dir, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        kids = pathlib.Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        if kids.exists() and len(kids.read_text().split()) >= 2 and \
                list((w.dir / "data").glob(".processed.tmp-*/tokens/test.pt")):
            break
        time.sleep(0.02)
    os.killpg(proc.pid, sig) if sig == signal.SIGINT else proc.send_signal(sig)
    t = time.monotonic()
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, f"{first_line(out)}  [{time.monotonic() - t:.1f} s after the signal]"


def train_backbones(w: Work) -> None:
    for kind in ("transformer", "gnn"):
        lr = w.dir / "training" / "lr_find" / kind / "recommended_lr.json"
        lr.parent.mkdir(parents=True, exist_ok=True)
        lr.write_text('{"lr": 0.001}')
        proc = w.run([*TRAIN, kind, "42"])
        assert proc.returncode == 0, proc.stderr


def case_table(template: pathlib.Path, trained: pathlib.Path, scratch: pathlib.Path, only: list[str]) -> list[tuple]:
    table = []
    n = iter(range(1000))

    def case(label: str, command: str, setup, base: pathlib.Path = template, intact=None):
        if only and not any(o in label for o in only):
            return
        w = Work(scratch / f"case{next(n)}", base)
        got = setup(w)
        if isinstance(got, tuple):
            code, line = got
        else:
            proc = w.run(got)
            code, line = proc.returncode, first_line(proc.stderr + proc.stdout)
        ok = (intact or Work.data_intact)(w)
        table.append((label, command, code, line.replace(str(w.dir) + "/", ""), "yes" if ok else "no"))
        print(f"{label}: {code}", file=sys.stderr)

    gz = gzip.compress(rows(2000))
    case("malformed JSON line", "prepare", lambda w: bad_file(w, "bad.jsonl", b'{"func": "int a;", "target": 0}\n{"func"\n'))
    case("missing label field", "prepare", lambda w: bad_file(w, "bad.jsonl", b'{"func": "int a;"}\n'))
    case("null label", "prepare", lambda w: bad_file(w, "bad.jsonl", b'{"func": "int a;", "target": null}\n'))
    case("label 2", "prepare", lambda w: bad_file(w, "bad.jsonl", b'{"func": "int a;", "target": 2}\n'))
    case("invalid UTF-8", "prepare", lambda w: bad_file(w, "bad.jsonl", b'{"func": "\xff", "target": 0}\n'))
    case("CSV with an unclosed quote", "prepare",
         lambda w: bad_file(w, "bad.csv", b'func,target\n"int a;",1\n"int b;,0\nint c;,1\n',
                            {"code": "func", "label": "target"}))
    case("truncated .gz", "prepare", lambda w: bad_file(w, "fns.jsonl.gz", gz[: len(gz) // 2]))
    case("missing data file", "prepare", lambda w: bad_file(w, "x", b"") and (w.dir / "x").unlink() or PREPARE)
    case("200 records, all idx=7", "prepare", lambda w: bad_file(w, "dup.jsonl", rows(200, idx=lambda i: 7)))
    case("all-one-class data", "prepare", lambda w: bad_file(w, "one.jsonl", rows(200, label=lambda i: 1)))
    case("one-class validation split", "prepare",
         lambda w: official(w, {"train": 100, "valid": 60, "test": 60}, one_class="valid"))
    case("tiny splits 16/2/2", "prepare", lambda w: official(w, {"train": 16, "valid": 2, "test": 2}),
         intact=lambda w: True)
    case("config typo gnn.epoch", "train gnn 42", lambda w: w.params({"gnn": {"epoch": 3}}) or [*TRAIN, "gnn", "42"])
    for key, over in (("gnn.lr_max=.nan", {"gnn": {"lr_max": float("nan")}}),
                      ("fusion.base_lr=.nan", {"fusion": {"base_lr": float("nan")}}),
                      ("seeds: [7, -1]", {"seeds": [7, -1]}), ("seeds: [7, 7]", {"seeds": [7, 7]})):
        case(key, "train gnn 42", lambda w, o=over: w.params(o) or [*TRAIN, "gnn", "42"])
    case("Ctrl-C (SIGINT to the group) mid graph building", "prepare", lambda w: interrupted(w, signal.SIGINT))
    case("SIGTERM mid graph building", "prepare", lambda w: interrupted(w, signal.SIGTERM))

    def killed_then_rerun(w: Work):
        w.params({"data": {"synthetic": {"n_functions": 3200}}, "graph": {"workers": 2}})
        proc = subprocess.Popen(PREPARE, cwd=w.dir, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not list((w.dir / "data").glob(".processed.tmp-*/tokens")) and proc.poll() is None:
            time.sleep(0.02)
        proc.kill()
        proc.wait()
        w.params({})
        again = w.run(PREPARE)
        return again.returncode, first_line(again.stderr) if again.returncode else "(ok; the stale temp dir is gone)"
    case("kill -9 mid prepare, then prepare", "prepare", killed_then_rerun)

    mnt = scratch / "small"
    mnt.mkdir()
    if shutil.which("unshare") and subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs tmpfs '{mnt}'"],
                                                  capture_output=True).returncode == 0:
        def full_disk(w: Work):
            w.params({"paths": {"processed": str(mnt / "processed")}})
            return ["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=512k tmpfs '{mnt}' && exec \"$0\" \"$@\"",
                    *PREPARE]
        case("full disk (512 KiB tmpfs)", "prepare", full_disk)

    def damaged(w: Work, how: str):
        ckpt = w.dir / "training" / "outputs" / "gnn_v17" / "seed_42" / "model_checkpoint.pt"
        if how == "truncated":
            ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
        else:  # a pickle that would run a command when unpickled without weights_only
            class Evil:
                def __reduce__(self):
                    return os.system, (f"touch {w.dir / 'PWNED'}",)
            ckpt.write_bytes(pickle.dumps({"best_model": Evil()}))
        w.damaged = ckpt.read_bytes()
        fusion = w.dir / "training" / "outputs" / "fusion_v17" / "seed_42"
        fusion.mkdir(parents=True, exist_ok=True)
        (fusion / "metrics.json").write_text('{"status": "ok"}')
        return [*TRAIN, "fusion", "42"]

    def kept(w: Work) -> bool:
        out = w.dir / "training" / "outputs"
        return ((out / "gnn_v17" / "seed_42" / "model_checkpoint.pt").read_bytes() == w.damaged
                and (out / "fusion_v17" / "seed_42" / "metrics.json").exists() and not (w.dir / "PWNED").exists())
    case("truncated finished gnn backbone", "train fusion 42", lambda w: damaged(w, "truncated"), trained, kept)
    case("malicious pickle as gnn checkpoint", "train fusion 42", lambda w: damaged(w, "evil"), trained, kept)

    git_ok = shutil.which("git") and (pathlib.Path(sys.executable).parent / "dvc").exists()
    if git_ok:
        def dvc_case(w: Work):
            repo = w.dir / "repo"
            listed = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=REPO,
                                    capture_output=True, check=True).stdout.decode().split("\0")
            for rel in filter(None, listed):
                if (REPO / rel).is_file():
                    (repo / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(REPO / rel, repo / rel)
            subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
            params = yaml.safe_load((repo / "params.yaml").read_text())
            params["data"]["synthetic"]["n_functions"] = 120
            (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            dvc = lambda *a: subprocess.run(["dvc", *a], cwd=repo, env=ENV, capture_output=True, text=True)  # noqa
            assert dvc("repro", "prepare").returncode == 0
            w.hash = dataset_hash(repo / "data" / "processed")
            (repo / "bad.jsonl").write_bytes(b'{"func": "int a;", "target": 0}\n{"func"\n')
            params["data"].update(source="files", files={**params["data"]["files"], "path": "bad.jsonl"})
            (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            proc = dvc("repro", "prepare")
            return proc.returncode, first_line(proc.stderr + proc.stdout)
        case("malformed JSON line under dvc repro", "dvc repro prepare", dvc_case,
             intact=lambda w: dataset_hash(w.dir / "repo" / "data" / "processed") == w.hash)
    return table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=[], help="run only the cases whose label contains one of these")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sg-hardening-") as tmp:
        scratch = pathlib.Path(tmp)
        template = scratch / "template"
        template.mkdir()
        (template / "params.yaml").write_text(yaml.safe_dump(TINY))
        proc = subprocess.run(PREPARE, cwd=template, env=ENV, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        trained = scratch / "trained"
        train_backbones(Work(trained, template))
        table = case_table(template, trained, scratch, args.only)
    print("| input | command | exit | first line of output | previous outputs intact |")
    print("|---|---|---|---|---|")
    for label, command, code, line, ok in table:
        print(f"| {label} | `{command}` | {code} | `{line.strip()[:240]}` | {ok} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
