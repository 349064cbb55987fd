"""Training cost of token windows (`tokenizer.max_windows`) on Devign, both arms in one process.

    python bench/bench_devign.py prepare                                                  # 1 window
    python bench/bench_devign.py prepare --set tokenizer.max_windows=4 --processed processed-w4
    python bench/bench_windows.py [--arms processed processed-w4] [--steps 30] [--rounds 3]

Each arm trains the devign-cpu transformer for `--steps` optimizer steps on the same randomly drawn
training functions (batched by length, as training does), timed after one warm-up step; the arms alternate
for `--rounds` rounds, so machine noise hits both alike. Reports functions per second and each arm's
time relative to the first (medians over the rounds), and the tokens kept per function.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time

import torch

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_devign import WORK, devign_config  # noqa: E402
from streamguard import runs  # noqa: E402
from streamguard.data.datasets import ProcessedData  # noqa: E402


def _batches(processed: pathlib.Path, steps: int) -> tuple[list[dict], object, ProcessedData]:
    """The same randomly drawn functions in every arm, length-sorted into batches as training does."""
    data = ProcessedData(processed)
    windows = int(data.meta.get("max_windows", 1))
    cfg = devign_config("devign-cpu", [f"tokenizer.max_windows={windows}"])
    kind = runs.get_kind("transformer")
    ds = kind.dataset(data, "train")
    bs = cfg.transformer.batch_size
    picked = torch.randperm(len(ds), generator=torch.Generator().manual_seed(42))[:(steps + 1) * bs]
    picked = picked[torch.argsort(ds.lengths[picked], stable=True)]
    collate = kind.collate(data.pad_id)
    batches = [collate([ds[int(i)] for i in picked[b:b + bs]]) for b in range(0, len(picked), bs)]
    order = torch.randperm(len(batches), generator=torch.Generator().manual_seed(7)).tolist()
    return [batches[i] for i in order], cfg, data


def _time(batches: list[dict], cfg, data) -> float:
    torch.manual_seed(0)
    kind = runs.get_kind("transformer")
    model = runs.build_model(kind.spec(cfg, data)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    t0 = 0.0
    for i, batch in enumerate(batches):
        if i == 1:  # the first step warms allocator and kernels
            t0 = time.perf_counter()
        loss = loss_fn(model(batch), batch["labels"].float())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", nargs="+", default=["processed", "processed-w4"],
                        help="prepared directories under bench/work/devign")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    missing = [a for a in args.arms if not (WORK / a / "prepare_meta.json").exists()]
    if missing:
        print(f"not prepared: {', '.join(str(WORK / a) for a in missing)} (see this script's usage)")
        return 0
    arms = {a: _batches(WORK / a, args.steps) for a in args.arms}
    seconds: dict[str, list[float]] = {a: [] for a in args.arms}
    for _ in range(args.rounds):
        for a, (batches, cfg, data) in arms.items():
            seconds[a].append(_time(batches, cfg, data))
    first = args.arms[0]
    result = {}
    for a, (batches, cfg, data) in arms.items():
        timed = batches[1:]
        functions = sum(len(b["labels"]) for b in timed)
        tokens = sum(int(b["attention_mask"].sum()) for b in timed)
        typical = statistics.median(seconds[a])
        result[a] = {"max_windows": int(data.meta.get("max_windows", 1)), "functions": functions,
                     "tokens_per_function": round(tokens / functions, 1),
                     "functions_per_s": round(functions / typical, 1), "seconds": [round(s, 2) for s in seconds[a]],
                     "time_vs_first": round(typical / statistics.median(seconds[first]), 3)}
    print(json.dumps({"torch_threads": torch.get_num_threads(), "steps": args.steps, "arms": result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
