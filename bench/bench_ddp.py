"""Training throughput, 1 process vs N processes (torchrun + DistributedDataParallel), per model kind.

    python bench/bench_ddp.py [--procs 2] [--epochs 2] [--functions 600] [--processed DIR] [--json out.json]

Prepares a small synthetic dataset (quick-profile models) in a temporary directory, then trains the
transformer, the GNN and the fusion (seed 42, over the two backbones, with its out-of-fold folds)
through the real stage code (`runs.train_run`) twice: under `torchrun --nproc-per-node=1` and
`--nproc-per-node=N`, one intra-op thread per process (so N processes use N cores). Samples per
second = training samples x epochs / the run's epoch time from its run log (an epoch's time
includes its validation pass, which rank 0 runs alone). The effective batch is the same in both
runs, so the ratio is what the extra processes buy for the same result, not a larger batch.

On CPU the processes share the machine's cores, memory bandwidth and, for the gloo all-reduce,
its loopback network; the figures say how many cores there were. With CUDA each process takes one
GPU (NCCL).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

KINDS = ("transformer", "gnn", "fusion")
SEED = 42


def _overrides(args) -> dict:
    return {"data.synthetic.n_functions": args.functions, "graph.workers": 1,
            **{f"{kind}.epochs": args.epochs for kind in KINDS},
            **{f"{kind}.patience": args.epochs + 1 for kind in KINDS},
            "fusion.oof_folds": 2, "fusion.oof_epochs": 1}


def _config(args):
    from streamguard.config import apply_overrides, from_dict
    from streamguard.kinds import registry

    return from_dict(apply_overrides({}, _overrides(args)), kinds=registry())


def worker(args) -> None:
    """One rank of a measured run: the three kinds, in pipeline order."""
    from streamguard.runs import train_run
    from streamguard.train import distributed

    cfg = _config(args)
    root = pathlib.Path(args.root)
    with distributed.session("auto"):
        for kind in KINDS:
            train_run(kind, cfg, SEED, root / args.tag / "outputs", root / "processed", root / "lr",
                      root / args.tag / "logs")


def _measure(args, root: pathlib.Path, procs: int) -> dict[str, float]:
    from streamguard.io import read_json
    from streamguard.kinds import get_kind

    tag = f"procs_{procs}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}",
           __file__, "--worker", "--root", str(root), "--tag", tag, "--epochs", str(args.epochs),
           "--functions", str(args.functions)]
    subprocess.run(cmd, env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    n_train = _train_size(root)
    rates = {}
    for kind in KINDS:
        log = read_json(root / tag / "logs" / get_kind(kind).output_dir / f"seed_{SEED}" / "run_log.json")
        seconds = sum(s for s in log["epoch_seconds"] if s)
        rates[kind] = n_train * len(log["epoch_seconds"]) / seconds
    return rates


def _train_size(root: pathlib.Path) -> int:
    from streamguard.data.datasets import ProcessedData

    return len(ProcessedData(root / "processed").tokens("train"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--functions", type=int, default=600, help="synthetic functions to generate")
    ap.add_argument("--processed", default=None, help="train on this prepared data/processed instead")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--root", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--tag", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        import torch

        torch.set_num_threads(1)
        worker(args)
        return

    import torch

    from streamguard.io import write_json_atomic

    with tempfile.TemporaryDirectory(prefix="bench-ddp-") as tmp:
        root = pathlib.Path(tmp)
        if args.processed:
            (root / "processed").symlink_to(pathlib.Path(args.processed).resolve())
        else:
            from streamguard.data.pipeline import prepare

            prepare(_config(args), root / "processed")
        for kind in ("transformer", "gnn"):  # a fixed LR: the bench measures speed, not the LR finder
            write_json_atomic(root / "lr" / kind / "recommended_lr.json", {"lr": 1e-3})
        one = _measure(args, root, 1)
        many = _measure(args, root, args.procs)
        n_train = _train_size(root)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = {
        "device": device, "cpus": os.cpu_count(), "procs": args.procs, "epochs": args.epochs,
        "train_samples": n_train, "threads_per_process": 1,
        "samples_per_s": {kind: {"1": round(one[kind], 1), str(args.procs): round(many[kind], 1),
                                 "ratio": round(many[kind] / one[kind], 2)} for kind in KINDS},
    }
    print(f"device {device}, {os.cpu_count()} CPU cores visible (shared with whatever else runs on the machine), "
          f"1 thread per process, {n_train} training samples, {args.epochs} epochs")
    print(f"{'kind':<12} {'1 proc':>10} {f'{args.procs} procs':>10} {'ratio':>6}   (samples/s)")
    for kind in KINDS:
        r = result["samples_per_s"][kind]
        print(f"{kind:<12} {r['1']:>10.1f} {r[str(args.procs)]:>10.1f} {r['ratio']:>6.2f}")
    if device == "cpu":
        print("no GPU: CPU processes with gloo; GPU figures (NCCL) need a machine with GPUs")
    if args.json:
        write_json_atomic(args.json, result)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
