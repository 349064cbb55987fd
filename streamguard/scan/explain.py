"""Why a function was flagged: the taint paths its statement graph holds, and its lines ranked by
how much the model's score drops when each is blanked out (occlusion, as LineVul ranks lines).

Occlusion works the same for every model kind: the blanked function goes through the bundle's own
encoder, so the GNN loses that statement's node (and the flow through it), and the transformer that
line's tokens. With flow tags the other lines' tokens keep the tags of the function as written
(`tags_from`): re-deriving them would strip every later statement's `tainted` tag when the source line
is blanked, and the tagged models would rank the source first whatever they learned of the sink.
"""
from __future__ import annotations

import dataclasses
from collections import deque

from ..graphs.builder import build_statement_graph
from ..graphs.graph import StatementGraph
from ..graphs.languages import get_language
from .detector import Detector

MAX_PATHS = 5
MAX_OCCLUDED_LINES = 64  # candidate lines per function: bounds the cost of one explanation
TOP_LINES = 5
EXPLAIN_NODES = 256  # graph cap for explanations: large enough to keep every statement of most functions


@dataclasses.dataclass(frozen=True)
class Step:
    line: int  # in the file
    text: str
    role: str  # source | flow | sink


@dataclasses.dataclass(frozen=True)
class TaintPath:
    vuln_class: str  # a class of the language's taint catalog: buffer, command, sql, format, ...
    steps: tuple[Step, ...]


@dataclasses.dataclass(frozen=True)
class LineScore:
    line: int
    contribution: float  # score drop when this line is blanked
    text: str


def sink_classes(node, catalog) -> list[str]:
    """Taint classes for which a statement's calls are sinks, by the catalog."""
    mask = 0
    for api in node.apis:
        m, _ = catalog.sinks(api, [])
        if not m and api in catalog.format_args:
            m = catalog.format_class
        mask |= m
    return [name for name, bit in catalog.classes.items() if mask & bit]


def explanation_graph(code: str, language: str) -> StatementGraph:
    """The statement graph of the function as written: node lines match the file."""
    return build_statement_graph(code, EXPLAIN_NODES, language)


def taint_paths(graph: StatementGraph, language: str, first_line: int) -> list[TaintPath]:
    """Source -> ... -> sink paths along the graph's taint edges, the shortest one per sink."""
    catalog = get_language(language).catalog
    preds: dict[int, list[int]] = {}
    for d, u in graph.edges_of("taint"):
        preds.setdefault(u, []).append(d)
    paths = []
    for sink, node in enumerate(graph.nodes):
        if not node.is_sink or sink not in preds:
            continue
        came_from = {sink: -1}
        queue, start = deque([sink]), None
        while queue:  # breadth first: the nearest source
            u = queue.popleft()
            if graph.nodes[u].is_source and u != sink:
                start = u
                break
            for d in preds.get(u, ()):
                if d not in came_from:
                    came_from[d] = u
                    queue.append(d)
        if start is None:
            start = u  # the walk ended without a source statement: begin where the taint enters
        chain, at = [], start
        while at != -1:
            chain.append(at)
            at = came_from[at]
        steps = tuple(Step(first_line + graph.nodes[i].line - 1, graph.nodes[i].text,
                           "source" if k == 0 else "sink" if i == sink else "flow") for k, i in enumerate(chain))
        for cls in sink_classes(node, catalog) or ["unknown"]:
            paths.append(TaintPath(cls, steps))
    return paths[:MAX_PATHS]


def candidate_lines(graph: StatementGraph) -> list[int]:
    """Function-relative lines holding a statement (not the header), in source order."""
    lines = sorted({n.line for n in graph.nodes if n.kind != "function"})
    return lines[:MAX_OCCLUDED_LINES]


def occlusions(code: str, graph: StatementGraph) -> tuple[list[int], list[str]]:
    """(function-relative statement lines, the function with each of those lines blanked)."""
    rows = code.split("\n")
    lines = [r for r in candidate_lines(graph) if 1 <= r <= len(rows)]
    return lines, ["\n".join("" if k == r - 1 else row for k, row in enumerate(rows)) for r in lines]


def ranked(code: str, lines: list[int], probs: list[float], probability: float, first_line: int,
           top: int = TOP_LINES) -> list[LineScore]:
    """Lines ordered by the score drop their blanking caused (largest first)."""
    rows = code.split("\n")
    scored = [LineScore(first_line + r - 1, round(probability - p, 6), rows[r - 1].strip()) for r, p in zip(lines, probs)]
    scored.sort(key=lambda s: (-s.contribution, s.line))
    return scored[:top]


def rank_lines(detector: Detector, code: str, graph: StatementGraph, probability: float,
               first_line: int, top: int = TOP_LINES) -> list[LineScore]:
    """One function's statement lines ordered by the score drop when each is blanked."""
    lines, variants = occlusions(code, graph)
    probs, _ = detector.score(variants, [code] * len(variants)) if variants else ([], [])
    return ranked(code, lines, probs, probability, first_line, top)
