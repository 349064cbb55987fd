"""Peak memory and time of building one statement graph from a huge generated C function.

    python bench/bench_graph_memory.py [--sizes 0.75 2.3 6.5] [--max-nodes 32] [--mem-limit-gb 6] [--timeout 300]
    python bench/bench_graph_memory.py --source OTHER_CHECKOUT    # the same against another checkout
    python bench/bench_graph_memory.py --one 6.5                  # one measurement, as JSON (what the test runs)

Each size is measured in a fresh subprocess: it generates the function (one function body of
repeated blocks: declarations, a conditionally updated accumulator, a loop, string sinks; the
accumulator's definitions all reach later uses, so exact reaching definitions are quadratic),
records ru_maxrss, builds the graph and records ru_maxrss again. The address space of the child is
capped at --mem-limit-gb so a checkout without the budgets fails fast instead of exhausting the
machine; such a run prints the limit it hit.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import resource
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]


def make_function(n_bytes: int) -> str:
    """One C function of about `n_bytes` characters."""
    parts = ["int big(int argc, char **argv, char *input)\n{\n    char buf[256];\n    int total = 0;\n"]
    size, i = len(parts[0]), 0
    while size < n_bytes:
        v, w = f"v{i}", (f"v{i // 2}" if i else "total")
        block = (f"    int {v} = {w} + argc * {i % 97};\n"
                 f"    if ({v} > total) {{\n        total += {v};\n        buf[{v} % 256] = input[{i % 50}];\n    }}\n"
                 f"    for (int k{i} = 0; k{i} < {v}; k{i}++) {{\n        total ^= k{i} + {w};\n"
                 f"        if (total < 0) break;\n    }}\n"
                 f"    strcpy(buf, input + {v});\n    sprintf(buf, \"%d\", total);\n")
        parts.append(block)
        size += len(block)
        i += 1
    parts.append("    return total;\n}\n")
    return "".join(parts)


def measure_one(mb: float, max_nodes: int) -> dict:
    from streamguard.graphs.builder import build_statement_graph
    code = make_function(int(mb * 1024 * 1024))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    t = time.perf_counter()
    g = build_statement_graph(code, max_nodes)
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"mb": mb, "chars": len(code), "statements": g.n_nodes_before_cap, "nodes": len(g.nodes),
            "rss_before_mb": round(before / 1024, 1), "peak_rss_mb": round(peak / 1024, 1),
            "added_mb": round((peak - before) / 1024, 1), "seconds": round(seconds, 2)}


def run_child(source: pathlib.Path, mb: float, max_nodes: int, mem_limit_gb: float, timeout: float) -> dict:
    limit = int(mem_limit_gb * 2**30)
    cap = lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # noqa: E731
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "--one", str(mb), "--max-nodes", str(max_nodes),
           "--source", str(source)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, preexec_fn=cap)
    except subprocess.TimeoutExpired:
        return {"mb": mb, "failed": f"over {timeout:.0f} s"}
    if proc.returncode != 0:
        why = "MemoryError" if "MemoryError" in proc.stderr else f"exit {proc.returncode}"
        return {"mb": mb, "failed": f"{why} (address space capped at {mem_limit_gb:g} GB)"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=float, nargs="+", default=[0.75, 2.3, 6.5], help="function sizes in MB")
    ap.add_argument("--max-nodes", type=int, default=32)
    ap.add_argument("--source", type=pathlib.Path, default=REPO, help="checkout whose streamguard to measure")
    ap.add_argument("--mem-limit-gb", type=float, default=6.0)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--one", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.path.insert(0, str(args.source.resolve()))
    if args.one is not None:
        print(json.dumps(measure_one(args.one, args.max_nodes)))
        return 0
    print(f"{'size MB':>8} {'statements':>10} {'peak RSS MB':>12} {'added MB':>9} {'seconds':>8}")
    for mb in args.sizes:
        r = run_child(args.source, mb, args.max_nodes, args.mem_limit_gb, args.timeout)
        if "failed" in r:
            print(f"{mb:>8} {'':>10} {'failed: ' + r['failed']}")
        else:
            print(f"{mb:>8} {r['statements']:>10} {r['peak_rss_mb']:>12} {r['added_mb']:>9} {r['seconds']:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
