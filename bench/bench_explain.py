"""How often scan's explanations point at the right line, where the truth is known by construction.

Every vulnerable function of the synthetic test split reaches a catalogued sink of its CWE family
(CWE-89 -> sql, CWE-78 -> command, CWE-134 -> format, CWE-120/121 -> buffer): the truth lines are the
statements calling a sink of that class. For each model kind's best run (exported as a bundle) the
occlusion ranking of `streamguard scan` is scored by top-1 and top-5 line accuracy (a truth line
ranked first / among the first five), over all vulnerable test functions and over the flagged ones;
the taint paths by whether one ends on a truth line. A random ranking of the same candidate lines
is the chance baseline.

    .venv/bin/python bench/bench_explain.py [--outputs training/outputs] [--processed data/processed]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import random
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamguard.bundle import export_run, load_bundle  # noqa: E402
from streamguard.graphs.languages import get_language  # noqa: E402
from streamguard.kinds import kind_names  # noqa: E402
from streamguard.scan.detector import Detector  # noqa: E402
from streamguard.scan.explain import candidate_lines, explanation_graph, rank_lines, sink_classes, taint_paths  # noqa: E402

CWE_CLASS = {"CWE-89": "sql", "CWE-78": "command", "CWE-134": "format", "CWE-120": "buffer", "CWE-121": "buffer"}


def truth_lines(graph, cwe: str) -> set[int]:
    catalog = get_language("c").catalog
    return {n.line for n in graph.nodes if n.kind != "function" and CWE_CLASS[cwe] in sink_classes(n, catalog)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outputs", default="training/outputs")
    parser.add_argument("--processed", default="data/processed")
    parser.add_argument("--summary", default="training/outputs/production_summary")
    args = parser.parse_args()
    records = [json.loads(line) for line in (pathlib.Path(args.processed) / "splits" / "test.jsonl").read_text().splitlines()]
    vulnerable = [r for r in records if r["label"] == 1 and r.get("cwe") in CWE_CLASS]
    graphs = [explanation_graph(r["code"], "c") for r in vulnerable]
    truths = [truth_lines(g, r["cwe"]) for g, r in zip(graphs, vulnerable)]
    keep = [i for i, t in enumerate(truths) if t]
    print(f"{len(vulnerable)} vulnerable test functions, {len(keep)} with a catalogued sink line")
    path_hits = sum(any(p.steps[-1].line in truths[i] for p in taint_paths(graphs[i], "c", 1)) for i in keep)
    rng = random.Random(0)
    chance1 = chance5 = 0
    for i in keep:
        lines = candidate_lines(graphs[i])
        rng.shuffle(lines)
        chance1 += lines[0] in truths[i]
        chance5 += bool(set(lines[:5]) & truths[i])
    rows = [{"ranking": "chance", "n": len(keep), "top1": round(chance1 / len(keep), 3), "top5": round(chance5 / len(keep), 3)},
            {"ranking": "taint path ends on the sink line", "n": len(keep), "top1": round(path_hits / len(keep), 3)}]
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kind_names():
            bundle = load_bundle(export_run(kind, None, args.outputs, args.processed, pathlib.Path(tmp) / kind,
                                            summary_dir=args.summary))
            detector = Detector(bundle)
            probs, _ = detector.score([vulnerable[i]["code"] for i in keep])
            hit1 = hit5 = f_n = f_hit1 = f_hit5 = 0
            for i, p in zip(keep, probs):
                ranked = [s.line for s in rank_lines(detector, vulnerable[i]["code"], graphs[i], p, 1, top=5)]
                h1, h5 = bool(ranked) and ranked[0] in truths[i], bool(set(ranked) & truths[i])
                hit1, hit5 = hit1 + h1, hit5 + h5
                if p >= bundle.threshold:
                    f_n, f_hit1, f_hit5 = f_n + 1, f_hit1 + h1, f_hit5 + h5
            rows.append({"ranking": f"occlusion, {kind} (seed {bundle.config['model']['seed']})", "n": len(keep),
                         "top1": round(hit1 / len(keep), 3), "top5": round(hit5 / len(keep), 3),
                         "flagged_n": f_n, "flagged_top1": round(f_hit1 / max(f_n, 1), 3),
                         "flagged_top5": round(f_hit5 / max(f_n, 1), 3)})
            print(json.dumps(rows[-1]), flush=True)
    for row in rows[:2]:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
