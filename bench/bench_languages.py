"""Per language: graph-building speed, parse failures on synthetic and fuzzed code, pipeline metrics.

    python bench/bench_languages.py [--n 2000] [--languages c java python] [--seed 42]
    python bench/bench_languages.py --pipeline java=CHECKOUT_A python=CHECKOUT_B   # + the quick pipeline's
                                                                                  # test metrics, read from
                                                                                  # CHECKOUT/metrics/*.json

Speed: `--n` synthetic functions of the language (the generator prepare uses, seed `--seed`), built one
after the other in this process (no pool), after one warm-up graph; functions per second of wall time
and the mean graph size. Parse failures: the share of graphs with `parse_ok=False`, on the synthetic
functions and on fuzzed copies of them (a random cut, or 1-8 characters replaced by brackets, quotes,
commas, newlines); every fuzzed input must still give a valid graph. The pipeline figures come from
a checkout where `dvc exp run -S graph.language=LANG` (or `dvc repro` with that parameter) has run:
test ROC-AUC and accuracy per model, seed by seed and their mean, next to TF-IDF + LR.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import random
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamguard.data.synthetic import generate  # noqa: E402
from streamguard.graphs.builder import build_statement_graph  # noqa: E402
from streamguard.graphs.graph import EDGE_TYPES  # noqa: E402

FUZZ_CHARS = "{}():;,\n\"'#/* \t"


def fuzz(code: str, rng: random.Random) -> str:
    if rng.random() < 0.5:
        a = rng.randint(0, len(code))
        return code[a:rng.randint(a, len(code))] if rng.random() < 0.5 else code[:a]
    chars = list(code)
    for _ in range(rng.randint(1, 8)):
        chars[rng.randrange(len(chars))] = rng.choice(FUZZ_CHARS)
    return "".join(chars)


def valid(g) -> bool:
    n = len(g.nodes)
    return all(0 <= s < n and 0 <= d < n and 0 <= t < len(EDGE_TYPES) for s, d, t in g.edges)


def measure(language: str, n: int, seed: int) -> dict:
    codes = [r["code"] for r in generate(n, seed=seed, language=language)]
    build_statement_graph(codes[0], 32, language)  # warm-up: grammar load, parser creation
    start = time.perf_counter()
    graphs = [build_statement_graph(c, 32, language) for c in codes]
    wall = time.perf_counter() - start
    rng = random.Random(seed)
    fuzzed = [build_statement_graph(fuzz(c, rng), 32, language) for c in codes]
    return {
        "language": language, "functions": n, "seconds": round(wall, 3),
        "functions_per_s": round(n / wall, 1),
        "mean_nodes_before_cap": round(sum(g.n_nodes_before_cap for g in graphs) / n, 1),
        "parse_failure_rate": sum(not g.parse_ok for g in graphs) / n,
        "with_taint_edge": sum(bool(g.edges_of("taint")) for g in graphs) / n,
        "fuzzed_parse_failure_rate": sum(not g.parse_ok for g in fuzzed) / n,
        "fuzzed_all_valid": all(valid(g) for g in fuzzed),
    }


def pipeline_metrics(checkout: pathlib.Path) -> dict:
    """Test ROC-AUC / accuracy per model and seed (metrics/runs.json), their means and the baseline."""
    runs = json.loads((checkout / "metrics" / "runs.json").read_text())
    summary = json.loads((checkout / "metrics" / "summary.json").read_text())
    keys = ("roc_auc", "accuracy")
    out: dict = {}
    for kind, body in summary.items():
        out[kind] = {"mean": {k: body.get(k) for k in keys}}
        if kind in runs:
            out[kind]["seeds"] = {seed: {k: (r.get("test") or {}).get(k) for k in keys}
                                  for seed, r in runs[kind].items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--languages", nargs="+", default=["c", "java", "python"])
    ap.add_argument("--pipeline", nargs="*", default=[], metavar="LANG=CHECKOUT")
    args = ap.parse_args()
    result: dict = {"graphs": [measure(lang, args.n, args.seed) for lang in args.languages]}
    for row in result["graphs"]:
        print(f"{row['language']:>7}: {row['functions_per_s']:8.1f} functions/s, parse failures "
              f"{row['parse_failure_rate']:.2%} synthetic / {row['fuzzed_parse_failure_rate']:.2%} fuzzed "
              f"(all valid: {row['fuzzed_all_valid']}), taint edge in {row['with_taint_edge']:.0%}")
    result["pipeline"] = {}
    for item in args.pipeline:
        lang, _, path = item.partition("=")
        result["pipeline"][lang] = pipeline_metrics(pathlib.Path(path))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
