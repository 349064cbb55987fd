"""SARIF 2.1.0 as GitHub code scanning reads it: a rule per vulnerability class, stable fingerprints,
taint paths as code flows, and `--baseline` filtering against an earlier report.

security-severity follows GitHub's bands (over 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium) and is
written as a string holding the number, as GitHub's documentation shows it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
import urllib.parse
from typing import Any, Iterable

from .. import __version__
from ..errors import StreamGuardError
from ..io import loads_strict


@dataclasses.dataclass(frozen=True)
class Rule:
    id: str
    name: str
    cwes: tuple[str, ...]
    short: str
    full: str
    severity: float


# Keyed by the taint class names of the language catalogs; "generic" covers a verdict without a path.
RULES = {
    "sql": Rule("SG-CWE-89", "SqlInjection", ("CWE-89",), "SQL injection",
                "Attacker-controlled data reaches an SQL query without escaping or parameter binding.", 8.8),
    "command": Rule("SG-CWE-78", "CommandInjection", ("CWE-78",), "OS command injection",
                    "Attacker-controlled data reaches a shell command without quoting or an allow-list.", 9.8),
    "format": Rule("SG-CWE-134", "FormatString", ("CWE-134",), "Externally-controlled format string",
                   "Attacker-controlled data is used as the format argument of a printf-family call.", 7.5),
    "buffer": Rule("SG-CWE-120", "BufferOverflow", ("CWE-120", "CWE-121"), "Buffer copy without checking size",
                   "Attacker-controlled data or length reaches an unbounded copy into a buffer.", 9.3),
    "code": Rule("SG-CWE-94", "CodeInjection", ("CWE-94",), "Code injection",
                 "Attacker-controlled data reaches a call that evaluates code (eval, exec, a script engine).", 9.8),
    "path": Rule("SG-CWE-22", "PathTraversal", ("CWE-22",), "Path traversal",
                 "Attacker-controlled data reaches a file path without normalisation or an allow-list.", 7.5),
    "generic": Rule("SG-VULN", "LikelyVulnerableFunction", (), "Function predicted vulnerable",
                    "The model scores this function as likely vulnerable; no taint path explains it, so the "
                    "ranked lines are the lines whose removal lowers the score most.", 5.0),
}


def rule_for(vuln_class: str | None) -> Rule:
    return RULES.get(vuln_class or "generic", RULES["generic"])


def _descriptor(rule: Rule) -> dict[str, Any]:
    cwe_text = ", ".join(rule.cwes) or "no single CWE"
    return {
        "id": rule.id, "name": rule.name,
        "shortDescription": {"text": rule.short},
        "fullDescription": {"text": rule.full},
        "help": {"text": f"{rule.full} ({cwe_text}.) The finding lists the taint path from the source line to "
                         "the sink line where one exists and the lines that weigh most in the score. Fix by "
                         "validating or escaping the data before the sink, or by using a bounded / "
                         "parameterised API.",
                 "markdown": f"**{rule.short}** ({cwe_text})\n\n{rule.full}\n\nThe result's code flow shows the "
                             "taint path; its message names the lines that weigh most in the score."},
        "defaultConfiguration": {"level": "warning"},
        "properties": {"tags": ["security", *rule.cwes], "security-severity": f"{rule.severity:.1f}",
                       "precision": "medium"},
    }


def fingerprint(rule_id: str, uri: str, function: str, code: str) -> str:
    """Stable across runs and line shifts: the function's text without whitespace, not its position."""
    body = re.sub(r"\s+", "", code)
    return hashlib.sha256(f"{rule_id}\0{uri}\0{function}\0{body}".encode("utf-8", "replace")).hexdigest()[:32]


def _location(uri: str, start_line: int, start_col: int | None = None, end_line: int | None = None,
              end_col: int | None = None, message: str | None = None) -> dict[str, Any]:
    region: dict[str, Any] = {"startLine": start_line}
    if start_col is not None:
        region["startColumn"] = start_col
    if end_line is not None:
        region["endLine"] = end_line
    if end_col is not None:
        region["endColumn"] = end_col
    loc: dict[str, Any] = {"physicalLocation": {
        "artifactLocation": {"uri": urllib.parse.quote(uri), "uriBaseId": "%SRCROOT%"}, "region": region}}
    if message:
        loc["message"] = {"text": message}
    return loc


def _result(f) -> dict[str, Any]:
    rule = rule_for(f.vuln_class)
    lines = ", ".join(f"{s.line} ({s.contribution:+.3f})" for s in f.top_lines)
    text = f"{f.function}: predicted vulnerable (p={f.probability:.3f}, {rule.short})"
    if f.taint_paths:
        p = f.taint_paths[0]
        text += f"; taint {' -> '.join(str(s.line) for s in p.steps)}"
    if lines:
        text += f"; lines weighing most: {lines}"
    result: dict[str, Any] = {
        "ruleId": rule.id, "level": f.level, "message": {"text": text},
        "locations": [_location(f.uri, f.start_line, f.start_column, f.end_line, f.end_column)],
        "partialFingerprints": {"primaryLocationLineHash": f.fingerprint},
        "properties": {"probability": f.probability, "function": f.function,
                       "topLines": [dataclasses.asdict(s) for s in f.top_lines]},
    }
    if f.taint_paths:
        result["codeFlows"] = [{
            "message": {"text": f"{p.vuln_class} taint: " + " -> ".join(str(s.line) for s in p.steps)},
            "threadFlows": [{"locations": [
                {"location": _location(f.uri, s.line, message=f"{s.role}: {s.text[:200]}")} for s in p.steps]}],
        } for p in f.taint_paths]
    return result


def _notification(skipped) -> dict[str, Any]:
    """A file or function scan did not score, so the CI log shows what the verdict does not cover."""
    return {"level": "warning", "message": {"text": f"skipped {skipped.path}: {skipped.reason}"}}


def to_sarif(findings: Iterable, root_uri: str, model: dict[str, Any], skipped: Iterable = ()) -> dict[str, Any]:
    results = [_result(f) for f in findings]
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "StreamGuard", "version": __version__,
                                "rules": [_descriptor(r) for r in RULES.values()]}},
            "invocations": [{"executionSuccessful": True,
                             "toolExecutionNotifications": [_notification(k) for k in skipped]}],
            "originalUriBaseIds": {"%SRCROOT%": {"uri": root_uri}},
            "results": results,
            "properties": {"model": model},
        }],
    }


def baseline_keys(path: str) -> set[tuple[str, str]]:
    """(ruleId, primaryLocationLineHash) of every result in an earlier SARIF report."""
    try:
        with open(path, encoding="utf-8") as f:
            sarif = loads_strict(f.read())
    except OSError as exc:
        raise StreamGuardError(f"{path}: cannot read the baseline ({exc.strerror})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise StreamGuardError(f"{path}: the baseline is not valid JSON ({str(exc).splitlines()[0]})") from None
    try:
        return {(r["ruleId"], r.get("partialFingerprints", {}).get("primaryLocationLineHash", ""))
                for run in sarif["runs"] for r in run.get("results", [])}
    except (KeyError, TypeError, AttributeError):
        raise StreamGuardError(f"{path}: field 'runs' is missing or malformed; the baseline must be a SARIF report "
                               "from `streamguard scan --format sarif`") from None
