"""`streamguard scan` speed, end to end from files on disk, per model kind, and on a real C code base.

Each kind's best run is exported to a bundle; then the `streamguard scan` command itself runs in a
subprocess (start-up, file walk, parsing, graphs in a process pool, batched scoring, report) on

- `functions`: test-split functions written out as C files (20 per file), with and without explanations;
- `codebase`: a real C tree given by --codebase (e.g. a PyPI source distribution that bundles a C
  library: `pip download --no-binary :all: --no-deps brotli` and unpack it).

Start-up is measured separately (a scan of one one-line file) and reported beside the throughput.

    .venv/bin/python bench/bench_scan.py [--n 1000] [--codebase DIR] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamguard.bundle import export_run  # noqa: E402
from streamguard.kinds import kind_names  # noqa: E402

SCAN = [sys.executable, "-m", "streamguard.cli", "scan"]


def timed_scan(args: list[str]) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "r.json"
        t = time.perf_counter()
        proc = subprocess.run([*SCAN, *args, "--format", "json", "-o", str(out), "--fail-on", "never"],
                              capture_output=True, text=True)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(f"scan failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
        return wall, json.loads(out.read_text())


def write_functions(records: list[dict], root: pathlib.Path, per_file: int = 20) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(0, len(records), per_file):
        body = "\n\n".join(r["code"] for r in records[i:i + per_file])
        (root / f"unit_{i // per_file:04d}.c").write_text(body + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outputs", default="training/outputs")
    parser.add_argument("--processed", default="data/processed")
    parser.add_argument("--summary", default="training/outputs/production_summary")
    parser.add_argument("--n", type=int, default=1000, help="functions for the per-kind throughput")
    parser.add_argument("--codebase", default=None)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        records = [json.loads(line) for line in (pathlib.Path(args.processed) / "splits" / "test.jsonl").read_text().splitlines()]
        records = (records * (args.n // len(records) + 1))[:args.n]
        write_functions(records, tmp / "src")
        (tmp / "one.c").write_text("int f(void) { return 0; }\n")
        rows = []
        for kind in kind_names():
            bundle = export_run(kind, None, args.outputs, args.processed, tmp / f"bundle_{kind}", summary_dir=args.summary)
            common = ["--bundle", str(bundle), "--workers", str(args.workers)]
            startup, _ = timed_scan([str(tmp / "one.c"), *common, "--no-explain"])
            plain, report = timed_scan([str(tmp / "src"), *common, "--no-explain"])
            explained, report_x = timed_scan([str(tmp / "src"), *common])
            n = len(report["functions"])
            n_flagged = sum(f["flagged"] for f in report_x["functions"])
            row = {"kind": kind, "functions": n, "startup_s": round(startup, 2), "wall_s": round(plain, 2),
                   "functions_per_s": round(n / plain, 1), "ms_per_function": round(1000 * plain / n, 2),
                   "ms_per_function_after_startup": round(1000 * (plain - startup) / n, 2),
                   "explained_wall_s": round(explained, 2), "flagged": n_flagged,
                   "ms_per_explained_finding": round(1000 * (explained - plain) / max(n_flagged, 1), 1)}
            if args.codebase:
                wall, rep = timed_scan([args.codebase, *common, "--no-explain"])
                wall_x, rep_x = timed_scan([args.codebase, *common])
                row.update({"codebase_functions": len(rep["functions"]), "codebase_files": rep["files_scanned"],
                            "codebase_skipped": len(rep["skipped"]), "codebase_wall_s": round(wall, 2),
                            "codebase_flagged": sum(f["flagged"] for f in rep_x["functions"]),
                            "codebase_explained_wall_s": round(wall_x, 2)})
            rows.append(row)
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
