"""Pipeline figures in the default (quick) profile, in a throw-away copy of the repository.

    python bench/bench_pipeline.py [--keep DIR]

1. clean `dvc repro` wall time (every stage, embedded synthetic data);
2. no-op `dvc repro` wall time (nothing changed);
3. LR-cache hit rate on a re-run after `rm -rf .dvc/cache data/processed training/outputs
   training/lr_find` with the LR cache kept, and that re-run's wall time;
4. the summary's test metrics next to a TF-IDF + logistic regression baseline on the same split.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]


def run(cmd: list[str], cwd: pathlib.Path) -> float:
    env = dict(os.environ, PATH=f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    # `dvc exp run` commits experiments: give git an identity on machines without one.
    for var in ("GIT_AUTHOR", "GIT_COMMITTER"):
        env.setdefault(f"{var}_NAME", "StreamGuard test")
        env.setdefault(f"{var}_EMAIL", "test@streamguard.invalid")
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def copy_repo(dest: pathlib.Path) -> None:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, files):
        if (REPO / rel).is_file() and rel != "dvc.lock":
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "bench"]):
        run(cmd, dest)


def tfidf_baseline(project: pathlib.Path) -> dict:
    sys.path.insert(0, str(REPO / "bench"))
    from bench_devign import tfidf_baseline as baseline

    return baseline(project / "data" / "processed", seed=42)["test"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=pathlib.Path, default=None, help="work here and keep the copy")
    args = parser.parse_args()
    work = args.keep or pathlib.Path(tempfile.mkdtemp(prefix="sg-bench-"))
    project = work / "repo"
    copy_repo(project)
    figures = {"clean_repro_s": run(["dvc", "repro"], project)}
    figures["noop_repro_s"] = run(["dvc", "repro"], project)
    for rel in (".dvc/cache", "data/processed", "training/outputs", "training/lr_find"):
        shutil.rmtree(project / rel, ignore_errors=True)
    figures["rerun_with_lr_cache_s"] = run(["dvc", "repro"], project)
    hits = [json.loads(path.read_text())["cache"]["hit"]
            for path in sorted((project / "training" / "lr_find").glob("*/recommended_lr.json"))]
    figures["lr_cache_hit_rate"] = sum(hits) / len(hits)
    summary = json.loads((project / "training" / "outputs" / "production_summary" / "production_summary.json").read_text())
    figures["test_mean"] = {name: {m: model.get(f"mean_{m}") for m in ("accuracy", "f1", "roc_auc")}
                            for name, model in summary["models"].items()}
    figures["tfidf_lr_test"] = {m: tfidf_baseline(project)[m] for m in ("accuracy", "f1", "roc_auc")}
    print(json.dumps(figures, indent=2))
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
