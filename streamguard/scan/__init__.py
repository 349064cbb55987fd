"""`streamguard scan`: score every function under the given paths with model bundles -> text, JSON or SARIF.

    scan_paths(paths, bundles, ...) -> ScanReport      the library entry point
    run_scan(args) -> exit code                        the CLI: 0 nothing flagged, 1 flagged, 2 error

Functions of every file are cut out with tree-sitter, batched across files, encoded by the bundle's
own encoder (graphs in a process pool) and scored at the bundle's threshold. Every flagged function
is explained (`explain.py`): its taint paths and the lines that weigh most in its score.
"""
from __future__ import annotations

import dataclasses
import math
import pathlib
import sys
from typing import Sequence

from ..bundle import Bundle, load_bundle
from ..errors import StreamGuardError
from ..io import dumps_strict, write_text_atomic
from ..project import project_root
from .detector import Detector
from .explain import LineScore, TaintPath, explanation_graph, occlusions, ranked, taint_paths
from .sarif import baseline_keys, fingerprint, rule_for, to_sarif
from .sources import Skipped, Unit, collect

LEVELS = ("note", "warning", "error")
DEFAULT_BUNDLE = "training/bundle"
MAX_FUNCTION_CHARS = 200_000  # prepare's default data.max_code_chars: longer code was never trained on


@dataclasses.dataclass
class Finding:
    file: str
    uri: str
    function: str
    start_line: int
    end_line: int
    start_column: int
    end_column: int
    probability: float
    flagged: bool
    parse_ok: bool
    level: str | None = None  # warning / error, for flagged functions
    vuln_class: str | None = None
    taint_paths: list[TaintPath] = dataclasses.field(default_factory=list)
    top_lines: list[LineScore] = dataclasses.field(default_factory=list)
    fingerprint: str = ""


@dataclasses.dataclass
class ScanReport:
    findings: list[Finding]
    skipped: list[Skipped]
    n_files: int
    bundles: dict[str, Bundle]
    threshold: dict[str, float]
    root: pathlib.Path  # URIs are relative to it
    suppressed: int = 0  # flagged findings already in the --baseline report

    @property
    def flagged(self) -> list[Finding]:
        return [f for f in self.findings if f.flagged]


def level_for(probability: float, threshold: float) -> str:
    """`error` in the upper half between the threshold and 1, `warning` below it."""
    return "error" if probability >= threshold + (1.0 - threshold) / 2 else "warning"


def _check_threshold(value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise StreamGuardError(f"--threshold must be a probability in [0, 1], got {value}")


def _by_language(bundles: Sequence[Bundle]) -> dict[str, Bundle]:
    out: dict[str, Bundle] = {}
    for b in bundles:
        if b.language in out:
            raise StreamGuardError(f"{b.path}: a second bundle for language {b.language!r} (first: {out[b.language].path})")
        out[b.language] = b
    return out


def _explain(flagged: list[tuple[Finding, Unit]], detector: Detector) -> None:
    """Taint paths and occlusion ranking for every flagged function; all occluded variants are
    scored in one batch (graphs in the process pool, length-sorted batches)."""
    jobs, variants, origins = [], [], []
    for f, u in flagged:
        graph = explanation_graph(u.function.code, u.language)
        f.taint_paths = taint_paths(graph, u.language, u.function.start_line)
        f.vuln_class = f.taint_paths[0].vuln_class if f.taint_paths else None
        lines, codes = occlusions(u.function.code, graph)
        jobs.append((f, u, lines, len(variants)))
        variants.extend(codes)
        origins.extend([u.function.code] * len(codes))
    probs, _ = detector.score(variants, origins) if variants else ([], [])
    for f, u, lines, at in jobs:
        f.top_lines = ranked(u.function.code, lines, probs[at:at + len(lines)], f.probability, u.function.start_line)


def scan_paths(paths: Sequence[str | pathlib.Path], bundles: Sequence[Bundle], *, root: str | pathlib.Path | None = None,
               threshold: float | None = None, explain: bool = True, batch_size: int = 64, workers: int | None = None,
               max_file_bytes: int = 20_000_000, max_function_chars: int = MAX_FUNCTION_CHARS,
               baseline: str | None = None) -> ScanReport:
    _check_threshold(threshold)
    by_lang = _by_language(bundles)
    paths = [pathlib.Path(p) for p in paths]
    root = pathlib.Path(root) if root is not None else (paths[0] if len(paths) == 1 and paths[0].is_dir() else pathlib.Path.cwd())
    units, skipped, n_files = collect(paths, root, set(by_lang), max_file_bytes=max_file_bytes,
                                      max_function_chars=max_function_chars)
    thresholds = {lang: (threshold if threshold is not None else b.threshold) for lang, b in by_lang.items()}
    findings: list[Finding] = [None] * len(units)  # type: ignore[list-item]
    seen: dict[str, int] = {}
    for lang, bundle in by_lang.items():
        mine = [i for i, u in enumerate(units) if u.language == lang]
        detector = Detector(bundle, batch_size=batch_size, workers=workers)
        probs, oks = detector.score([units[i].function.code for i in mine])
        thr = thresholds[lang]
        flagged = []
        for i, p, ok in zip(mine, probs, oks):
            u = units[i]
            findings[i] = f = Finding(str(u.path), u.uri, u.function.name, u.function.start_line, u.function.end_line,
                                      u.start_column, u.end_column, round(p, 6), p >= thr, ok)
            if f.flagged:
                f.level = level_for(p, thr)
                flagged.append((f, u))
        if explain:
            _explain(flagged, detector)
        for f, u in flagged:
            key = fingerprint(rule_for(f.vuln_class).id, f.uri, f.function, u.function.code)
            seen[key] = seen.get(key, 0) + 1  # identical functions in one file stay distinct
            f.fingerprint = f"{key}:{seen[key]}"
    report = ScanReport(findings, skipped, n_files, by_lang, thresholds, root)
    if baseline is not None:
        known = baseline_keys(baseline)
        for f in report.flagged:
            if (rule_for(f.vuln_class).id, f.fingerprint) in known:
                f.flagged, report.suppressed = False, report.suppressed + 1
    return report


def _model_info(report: ScanReport) -> dict:
    return {lang: {"kind": b.kind, "seed": b.config["model"].get("seed"), "threshold": report.threshold[lang],
                   "threshold_policy": b.config["threshold"].get("policy"), "bundle_format": b.config["format_version"]}
            for lang, b in report.bundles.items()}


def render(report: ScanReport, fmt: str, root_uri: str) -> str:
    if fmt == "json":
        return dumps_strict({"models": _model_info(report), "functions": report.findings, "skipped": report.skipped,
                             "files_scanned": report.n_files, "suppressed_by_baseline": report.suppressed})
    if fmt == "sarif":
        return dumps_strict(to_sarif(report.flagged, root_uri, _model_info(report), report.skipped))
    lines = []
    for f in report.findings:
        lines.append(f"{'VULN' if f.flagged else 'ok  '}  p={f.probability:.3f}  {f.file}:{f.start_line}  {f.function}")
        for p in f.taint_paths if f.flagged else ():
            lines.append(f"      {p.vuln_class} taint: " + " -> ".join(f"{s.line} {s.role}" for s in p.steps))
        if f.flagged and f.top_lines:
            lines.append("      lines weighing most: " + ", ".join(f"{s.line} ({s.contribution:+.3f})" for s in f.top_lines))
    models = ", ".join(f"{lang}: {m['kind']} at {m['threshold']:.3f}" for lang, m in _model_info(report).items())
    tail = f"; {report.suppressed} already in the baseline" if report.suppressed else ""
    lines.append(f"{len(report.flagged)} of {len(report.findings)} functions flagged in {report.n_files} files "
                 f"({models}){tail}")
    return "\n".join(lines) + "\n"


def failing(report: ScanReport, fail_on: str) -> bool:
    """Whether the flagged findings meet `--fail-on`: a level (note|warning|error), a probability, or never."""
    if fail_on == "never":
        return False
    if fail_on in LEVELS:
        return any(LEVELS.index(f.level or "warning") >= LEVELS.index(fail_on) for f in report.flagged)
    try:
        cut = float(fail_on)
    except ValueError:
        raise StreamGuardError(f"--fail-on must be never, note, warning, error or a probability, got {fail_on!r}") from None
    if not (math.isfinite(cut) and 0.0 <= cut <= 1.0):
        raise StreamGuardError(f"--fail-on must be a probability in [0, 1], got {fail_on}")
    return any(f.probability >= cut for f in report.flagged)


def default_bundle() -> pathlib.Path:
    root = project_root()
    if root is None:
        raise StreamGuardError(f"no --bundle given and no StreamGuard project (dvc.yaml) at or above {pathlib.Path.cwd()}; "
                               "pass --bundle DIR (made by `streamguard export`)")
    bundle = root / DEFAULT_BUNDLE
    if not bundle.is_dir():
        raise StreamGuardError(f"no --bundle given and {bundle} (the bundle of the project at {root}) does not exist; "
                               "run `dvc repro` (its export stage) or pass --bundle DIR")
    return bundle


def _check_output(output: str, report_sources: list[str]) -> None:
    out = pathlib.Path(output).resolve()
    for src in report_sources:
        if pathlib.Path(src).resolve() == out:
            raise StreamGuardError(f"{output}: is one of the scanned source files; choose another --output path")


def run_scan(args) -> int:
    bundle_dirs = args.bundle or [default_bundle()]
    bundles = [load_bundle(d) for d in bundle_dirs]
    if args.output:  # refuse before any work: the report must never replace a source file
        _check_output(args.output, [str(p) for p in args.paths if pathlib.Path(p).is_file()])
    report = scan_paths(args.paths, bundles, root=args.source_root, threshold=args.threshold, explain=not args.no_explain,
                        batch_size=args.batch_size, workers=args.workers, max_file_bytes=args.max_file_bytes,
                        max_function_chars=args.max_function_chars, baseline=args.baseline)
    if args.output:
        _check_output(args.output, [f.file for f in report.findings])
    for s in report.skipped:
        print(f"warning: skipped {s.path}: {s.reason}", file=sys.stderr)
    if report.n_files == 0:
        raise StreamGuardError(f"nothing to scan: no readable {'/'.join(sorted(report.bundles))} source file under "
                               f"{', '.join(map(str, args.paths))} ({len(report.skipped)} skipped)")
    if not report.findings:
        print(f"warning: no function scored in {report.n_files} files read"
              + (f" ({len(report.skipped)} skipped, see above)" if report.skipped else ""), file=sys.stderr)
    text = render(report, args.format, report.root.resolve().as_uri() + "/")
    if args.output:
        write_text_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    return 1 if failing(report, args.fail_on) else 0
