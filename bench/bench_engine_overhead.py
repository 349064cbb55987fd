"""Engine overhead: one training epoch through streamguard.train.engine vs. a plain hand-written loop.

Same process, same model and data, same optimizer (AdamW), clipping and LR schedule; the engine adds
per-group gradient norms, collapse checks, loss bookkeeping and batch handling. Epochs alternate
between the two loops after a warm-up, and the medians are compared.

    .venv/bin/python bench/bench_engine_overhead.py [--reps 7] [--device cpu] [--threads N] [--json out.json]
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time

import torch
from torch import nn
from torch.utils.data import TensorDataset

from streamguard.train.engine import LoopConfig, RunInfo, Trainer, make_loader
from streamguard.train.losses import make_loss
from streamguard.train.optim import build_optimizer, build_scheduler
from streamguard.train.seeding import seed_everything


class Net(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Dropout(0.1),
                                 nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(self, batch: dict) -> torch.Tensor:
        return self.net(batch["x"]).squeeze(-1)


def collate(items):
    return {"x": torch.stack([i[0] for i in items]), "labels": torch.stack([i[1] for i in items])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=8192)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(0)
    device = torch.device(args.device)
    x = torch.randn(args.samples, args.dim)
    y = (x[:, 0] + x[:, 1] > 0).float()
    dataset = TensorDataset(x, y)
    loss_fn = make_loss("bce")
    cfg = LoopConfig(epochs=args.reps + 1, lr=1e-3, device=args.device, amp="fp32", progress=False)

    engine_model = Net(args.dim, args.hidden)
    hand_model = copy.deepcopy(engine_model).to(device)
    loaders = {"train": make_loader(dataset, args.batch, shuffle=True, seed=0, collate_fn=collate),
               "val": make_loader(TensorDataset(x[:64], y[:64]), args.batch, seed=0, collate_fn=collate)}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(engine_model, loaders, loss_fn, cfg, tmp, RunInfo("bench", 0))

    hand_loader = make_loader(dataset, args.batch, shuffle=True, seed=0, collate_fn=collate)
    hand_opt, _ = build_optimizer(hand_model, cfg.lr, cfg.weight_decay)
    hand_sched = build_scheduler(hand_opt, len(hand_loader) * (args.reps + 1), cfg.warmup_ratio)

    def hand_epoch() -> None:
        hand_model.train()
        for batch in hand_loader:
            xb, yb = batch["x"].to(device, non_blocking=True), batch["labels"].to(device, non_blocking=True)
            loss = loss_fn(hand_model({"x": xb}).float(), yb)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(hand_model.parameters(), cfg.max_grad_norm)
            hand_opt.step()
            hand_opt.zero_grad(set_to_none=True)
            hand_sched.step()

    def engine_epoch() -> None:
        trainer.train_epoch()
        trainer.epoch += 1

    def timed(fn) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    timed(hand_epoch), timed(engine_epoch)  # warm-up
    hand, engine = [], []
    for _ in range(args.reps):
        hand.append(timed(hand_epoch))
        engine.append(timed(engine_epoch))
    h, e = statistics.median(hand), statistics.median(engine)
    figures = {
        "device": str(device), "torch_threads": torch.get_num_threads(), "steps_per_epoch": len(hand_loader),
        "batch": args.batch, "params": sum(p.numel() for p in hand_model.parameters()), "reps": args.reps,
        "hand_epoch_s_median": round(h, 4), "engine_epoch_s_median": round(e, 4),
        "overhead_pct": round(100 * (e / h - 1), 2),
        "hand_epoch_s": [round(v, 4) for v in hand], "engine_epoch_s": [round(v, 4) for v in engine],
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        from streamguard.io import write_json_atomic

        write_json_atomic(args.json, figures)


if __name__ == "__main__":
    main()
