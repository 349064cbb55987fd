"""Checks on written outputs: the summary against its JSON Schema, and a whole outputs tree.

`validate_summary` raises (the aggregate stage must not publish a malformed summary);
`validate_outputs` returns one line per problem so a CLI can list them all at once.
"""
from __future__ import annotations

import csv
import functools
import importlib.resources
import json
import math
import os
import pathlib
import re
from typing import Any, Iterable, Iterator

import jsonschema

from ..errors import StreamGuardError
from ..io import loads_strict
from .stats import outcome

SCHEMA_FILE = "summary_schema.json"
LOSS_COLUMNS = ("train_loss", "val_loss")
# repr() of a tensor/array that slipped into JSON as a string instead of numbers
_TENSOR_REPR = re.compile(r"^\s*(tensor|array|Parameter containing)\s*[(:]")


class SummaryValidationError(StreamGuardError):
    """production_summary.json does not match summary_schema.json."""


@functools.lru_cache(maxsize=1)
def load_summary_schema() -> dict[str, Any]:
    """The schema shipped as package data next to this module."""
    text = importlib.resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def _dotted(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def validate_summary(summary: Any, source: str = "production_summary.json") -> None:
    """Raise SummaryValidationError (one line: file, field, what is wrong) unless `summary` is valid."""
    # JSON Schema range checks pass NaN (every comparison with it is false), so refuse it first
    for where, value in _walk(summary):
        if isinstance(value, float) and not math.isfinite(value):
            raise SummaryValidationError(f"{source}: field '{where}': non-finite number {value}")
    validator = jsonschema.Draft202012Validator(load_summary_schema())
    errors = sorted(validator.iter_errors(summary), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        err = jsonschema.exceptions.best_match(errors)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise SummaryValidationError(f"{source}: field '{_dotted(err.absolute_path)}': {err.message}{more}")
    # cross-field rules a schema cannot express
    for name, entry in summary["models"].items():
        counts = entry["n_ok"] + entry["n_collapsed"] + entry["n_missing"]
        if counts != len(entry["runs"]) or len(entry["runs"]) != len(entry["seeds"]):
            raise SummaryValidationError(
                f"{source}: field 'models.{name}': n_ok+n_collapsed+n_missing={counts}, "
                f"runs={len(entry['runs'])}, seeds={len(entry['seeds'])} must all agree"
            )
    best = summary["best_overall_model"]
    if best is not None and best not in summary["models"]:
        raise SummaryValidationError(f"{source}: field 'best_overall_model': {best!r} is not one of the models")
    _check_comparisons(summary, source)


def _check_comparisons(summary: dict[str, Any], source: str) -> None:
    """The comparison blocks must describe the same runs as `models`, and the baseline they name."""
    def fail(field: str, message: str) -> None:
        raise SummaryValidationError(f"{source}: field '{field}': {message}")

    settings = summary["statistics"].get("comparison")
    comparisons = summary.get("comparisons")
    baseline = summary.get("baseline")
    if (settings is None) != (comparisons is None):
        fail("comparisons", "present without statistics.comparison, or the reverse")
    if baseline is not None and comparisons is None:
        fail("baseline", "a baseline without comparisons")
    if comparisons is None:
        return
    if settings["n_test_positive"] > settings["n_test"]:
        fail("statistics.comparison.n_test_positive", "more positives than test samples")
    if list(comparisons) != list(summary["models"]):
        fail("comparisons", f"models {list(comparisons)} differ from {list(summary['models'])}")
    for name, entry in comparisons.items():
        where = f"comparisons.{name}"
        runs = summary["models"][name]["runs"]
        if [r["seed"] for r in entry["runs"]] != [r["seed"] for r in runs]:
            fail(f"{where}.runs", "seeds differ from the model's runs")
        for i, (cmp_run, run) in enumerate(zip(entry["runs"], runs)):
            if cmp_run["available"] and run["status"] != "ok":
                fail(f"{where}.runs[{i}]", f"predictions used from a run with status {run['status']!r}")
        available = [r["seed"] for r in entry["runs"] if r["available"]]
        if entry["n_available"] != len(available):
            fail(f"{where}.n_available", f"{entry['n_available']}, but {len(available)} runs are available")
        vs = entry["vs_baseline"]
        comparable = baseline is not None and baseline["available"] and available
        if vs is None:
            if comparable:
                fail(f"{where}.vs_baseline", "missing although the baseline and some runs are available")
            continue
        if not comparable:
            fail(f"{where}.vs_baseline", "present without an available baseline and available runs")
        if vs["seeds"] != available or [m["seed"] for m in vs["mcnemar"]] != available:
            fail(f"{where}.vs_baseline", f"seeds or McNemar seeds differ from the available runs {available}")
        if vs["n_boot"] != settings["n_boot"]:
            fail(f"{where}.vs_baseline.n_boot", f"{vs['n_boot']}, but statistics.comparison says {settings['n_boot']}")
        bounds = (vs["diff"], vs["ci_low"], vs["ci_high"], vs["p_value"], vs["outcome"])
        if any(v is None for v in bounds) and any(v is not None for v in bounds):
            fail(f"{where}.vs_baseline", "diff, interval, p_value and outcome must be all defined or all null")
        if vs["ci_low"] is not None and vs["ci_low"] > vs["ci_high"]:
            fail(f"{where}.vs_baseline.ci_low", "above ci_high")
        if vs["outcome"] != outcome(vs):
            fail(f"{where}.vs_baseline.outcome", f"{vs['outcome']!r} does not follow from the interval")


def _visible_files(root: pathlib.Path, pattern: str) -> list[pathlib.Path]:
    """Files matching `pattern` under root, skipping hidden dirs/files (temp files of atomic writes)."""
    found = []
    for path in root.rglob(pattern):
        rel = path.relative_to(root).parts
        if path.is_file() and not any(p.startswith(".") for p in rel):
            found.append(path)
    return sorted(found)


class _NonFinite:
    def __init__(self, token: str):
        self.token = token


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path or "<root>", value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]")


def _json_problems(path: pathlib.Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{path}: cannot read ({type(exc).__name__}: {exc})"]
    try:
        data = loads_strict(text)
    except json.JSONDecodeError as exc:
        return [f"{path}:{exc.lineno}: invalid JSON at column {exc.colno} ({exc.msg})"]
    except ValueError:
        # loads_strict refused a NaN/Infinity token: parse again only to name where it is
        try:
            loose = json.loads(text, parse_constant=_NonFinite)
        except json.JSONDecodeError as exc:
            return [f"{path}:{exc.lineno}: invalid JSON at column {exc.colno} ({exc.msg})"]
        return [
            f"{path}: field '{where}': non-finite number {v.token} (strict JSON allows only finite numbers)"
            for where, v in _walk(loose)
            if isinstance(v, _NonFinite)
        ]
    return [
        f"{path}: field '{where}': looks like a serialized tensor/array ({v[:40]!r}); write numbers, not repr()"
        for where, v in _walk(data)
        if isinstance(v, str) and _TENSOR_REPR.match(v)
    ]


def _history_problems(path: pathlib.Path) -> list[str]:
    problems = []
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in LOSS_COLUMNS if c not in header]
            if missing:
                return [f"{path}:1: missing column(s) {', '.join(missing)}"]
            for row in reader:
                for col in LOSS_COLUMNS:
                    raw = (row.get(col) or "").strip()
                    try:
                        ok = math.isfinite(float(raw))
                    except ValueError:
                        ok = False
                    if not ok:
                        shown = repr(raw) if raw else "empty"
                        problems.append(
                            f"{path}:{reader.line_num}: column '{col}' is {shown} (epoch {row.get('epoch', '?')}); "
                            "losses must be finite"
                        )
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return [f"{path}: cannot read ({type(exc).__name__}: {exc})"]
    return problems


def validate_outputs(root: str | os.PathLike) -> list[str]:
    """Problems under `root` (e.g. training/outputs), one line each; empty when all is well.

    Every *.json must parse as strict JSON (no NaN/Infinity, no stringified tensors) and every
    metrics_history.csv must have finite train_loss and val_loss on every row.
    """
    root = pathlib.Path(root)
    if not root.is_dir():
        return [f"{root}: directory not found"]
    problems: list[str] = []
    for path in _visible_files(root, "*.json"):
        problems.extend(_json_problems(path))
    for path in _visible_files(root, "metrics_history.csv"):
        problems.extend(_history_problems(path))
    return problems
