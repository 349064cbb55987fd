"""Peak memory and wall time of `streamguard scan` on the inputs that used to exhaust memory.

- `huge_function`: one file holding a single 6.5 MB C function (skipped by the function budget and
  reported; the file is still parsed to find it);
- `many_functions`: one 5 MB file holding 20,606 small functions (all scored).

Each scan runs in a fresh wrapper process; the peak is the largest resident set of the scan process
or any of its graph workers (`ru_maxrss` of the waited-for descendants).

    .venv/bin/python bench/bench_scan_memory.py --bundle training/bundle [--explain]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

WRAPPER = """
import resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
wall = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"{rc.returncode} {wall:.2f} {peak:.0f} " + (rc.stderr.strip().splitlines() or [''])[-1][:160])
"""


def huge_function(path: pathlib.Path, size: int = 6_500_000) -> None:
    body, i = [], 0
    while sum(map(len, body)) < size:
        body.append(f"    int v{i} = v{max(i - 1, 0)} + {i % 97}; if (v{i} > {i % 13}) {{ v{i} -= argc; }}\n")
        i += 1
    path.write_text("int huge(int argc, char **argv) {\n    int v0 = argc;\n" + "".join(body) + "    return v0;\n}\n")


def many_functions(path: pathlib.Path, n: int = 20_606, size: int = 5_000_000) -> None:
    per = size // n
    out = []
    for i in range(n):
        head = f"int f{i}(int a, const char *s) {{\n    int r = a * {i % 31} + (int)s[0];\n"
        pad = "    r ^= r >> 1;\n" * max(0, (per - len(head) - 30) // 15)
        out.append(head + pad + "    return r;\n}\n")
    path.write_text("".join(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="training/bundle")
    parser.add_argument("--explain", action="store_true", help="also explain flagged functions")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        huge_function(tmp / "huge.c")
        many_functions(tmp / "many.c")
        for name, file in (("huge_function", tmp / "huge.c"), ("many_functions", tmp / "many.c")):
            cmd = [sys.executable, "-m", "streamguard.cli", "scan", str(file), "--bundle", args.bundle,
                   "--format", "json", "-o", str(tmp / "r.json"), "--fail-on", "never", "--workers", str(args.workers)]
            if not args.explain:
                cmd.append("--no-explain")
            res = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True, check=True)
            rc, wall, peak, *last = res.stdout.split(" ", 3)
            report = json.loads((tmp / "r.json").read_text()) if rc == "0" else {}
            print(json.dumps({"input": name, "bytes": file.stat().st_size, "exit": int(rc), "wall_s": float(wall),
                              "peak_rss_mb": int(peak), "functions_scored": len(report.get("functions", [])),
                              "skipped": len(report.get("skipped", [])), "last_stderr": " ".join(last).strip()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
