"""Statement-graph build speed and shape on the real Devign data.

    python bench/bench_graphs.py [--limit N] [--max-nodes 50] [--workers 2] [--out results.json]

Reads ../shared/datasets/devign/{train,valid,test}.jsonl.gz (relative to the repository root;
exits cleanly with a message when absent), then times
  1. a plain loop of build_statement_graph (the interpreter's default GC settings),
  2. parallel.build_graphs with workers=1 (sequential, GC paused),
  3. parallel.build_graphs with --workers processes,
checks that all three agree, and prints functions/s, the speed-up, the parse-failure rate and
node / edge statistics.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import pathlib
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamguard.graphs.builder import build_statement_graph  # noqa: E402
from streamguard.graphs.graph import EDGE_TYPES  # noqa: E402
from streamguard.graphs.parallel import available_cpus, build_graphs, gc_paused  # noqa: E402
from streamguard.io import write_json_atomic  # noqa: E402

DATA = REPO.parent / "shared" / "datasets" / "devign"


def load_codes(limit: int | None) -> list[str]:
    codes: list[str] = []
    for split in ("train", "valid", "test"):
        with gzip.open(DATA / f"{split}.jsonl.gz", "rt", encoding="utf-8") as fh:
            codes.extend(json.loads(line)["func"] for line in fh)
    return codes[:limit] if limit else codes


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def cpu_timed(fn):
    """CPU seconds of this process: unlike wall time, not inflated by other load on the machine."""
    t = time.process_time()
    out = fn()
    return out, time.process_time() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, help="only the first N functions")
    ap.add_argument("--max-nodes", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=pathlib.Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args()
    if not (DATA / "train.jsonl.gz").exists():
        print(f"skipped: Devign data not found at {DATA} (expected ../shared/datasets/devign/ from the repo root)")
        return 0
    codes = load_codes(args.limit)
    n = len(codes)
    chars = [len(c) for c in codes]
    print(f"{n} functions, {sum(chars) / n:.0f} chars mean, {max(chars)} max; "
          f"max_nodes={args.max_nodes}, {available_cpus()} CPUs available")

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    plain, t_plain = timed(lambda: [build_statement_graph(c, args.max_nodes) for c in codes])
    (seq, t_seq), t_seq_cpu = cpu_timed(lambda: timed(lambda: build_graphs(codes, args.max_nodes, workers=1)))
    par, t_par = timed(lambda: build_graphs(codes, args.max_nodes, workers=args.workers, min_parallel=0))
    assert plain == seq == par, "parallel and sequential builds differ"
    del plain, par

    biggest = max(range(n), key=lambda i: chars[i])
    with gc_paused():
        _, t_big = timed(lambda: build_statement_graph(codes[biggest], args.max_nodes))
    full = [g.n_nodes_before_cap for g in seq]
    kept = [len(g.nodes) for g in seq]
    edges = [len(g.edges) for g in seq]
    by_type = {t: sum(len(g.edges_of(t)) for g in seq) / n for t in EDGE_TYPES}
    results = {
        "functions": n,
        "max_nodes": args.max_nodes,
        "plain_loop_fn_per_s": n / t_plain,
        "sequential_fn_per_s": n / t_seq,
        "sequential_fn_per_cpu_s": n / t_seq_cpu,
        "load_average_1min_at_start": load,
        "parallel_fn_per_s": n / t_par,
        "parallel_workers": args.workers,
        "parallel_speedup_vs_sequential": t_seq / t_par,
        "largest_function_chars": chars[biggest],
        "largest_function_s": t_big,
        "parse_failure_rate": sum(not g.parse_ok for g in seq) / n,
        "empty_graphs": sum(k == 0 for k in kept),
        "nodes_before_cap": {"mean": statistics.fmean(full), "median": statistics.median(full), "max": max(full)},
        "nodes_after_cap": {"mean": statistics.fmean(kept), "median": statistics.median(kept), "max": max(kept)},
        "capped_fraction": sum(f > k for f, k in zip(full, kept)) / n,
        "edges_after_cap": {"mean": statistics.fmean(edges), "max": max(edges), "mean_by_type": by_type},
        "graphs_with_sink": sum(any(x.is_sink for x in g.nodes) for g in seq) / n,
        "graphs_with_taint_edge": sum(bool(g.edges_of("taint")) for g in seq) / n,
    }
    print(f"plain loop            {results['plain_loop_fn_per_s']:8.0f} functions/s  ({t_plain:.1f} s)")
    print(f"sequential (GC off)   {results['sequential_fn_per_s']:8.0f} functions/s  ({t_seq:.1f} s; "
          f"{results['sequential_fn_per_cpu_s']:.0f} functions per CPU-second)")
    print(f"parallel, {args.workers} workers  {results['parallel_fn_per_s']:8.0f} functions/s  ({t_par:.1f} s)"
          f"  speed-up x{results['parallel_speedup_vs_sequential']:.2f}")
    print(f"largest function: {chars[biggest]} chars in {t_big:.2f} s; 1-min load average at start {load:.2f}")
    print(f"parse failures: {results['parse_failure_rate']:.1%}; empty graphs: {results['empty_graphs']}")
    print("nodes before cap: mean {mean:.1f} median {median} max {max}".format(**results["nodes_before_cap"]))
    print("nodes after cap:  mean {mean:.1f} median {median} max {max}".format(**results["nodes_after_cap"])
          + f"; capped {results['capped_fraction']:.1%}")
    print(f"edges after cap: mean {results['edges_after_cap']['mean']:.1f} max {results['edges_after_cap']['max']}; "
          "per graph " + ", ".join(f"{t} {v:.1f}" for t, v in by_type.items()))
    print(f"graphs with a sink {results['graphs_with_sink']:.1%}, with a taint edge "
          f"{results['graphs_with_taint_edge']:.1%}")
    if args.out:
        write_json_atomic(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
