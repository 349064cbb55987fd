"""Normalization, de-duplication and leakage-free splits.

- `normalize_code` strips comments and trailing whitespace and collapses blank lines (string and char
  literals are left alone), so trivially different copies of a function compare equal.
- `dedup` keys samples on the normalized code with all whitespace collapsed: exact duplicates keep one
  copy (priority test > valid > train, so evaluation sets stay intact), duplicates with conflicting
  labels are removed everywhere and counted.
- `grouped_split` is a seeded, stratified split that keeps each group (commit, pair, ...) inside one
  split; `cross_project_split` puts named projects in test.
"""
from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ..errors import DataError

SPLITS = ("train", "valid", "test")

# Literals first so that comment markers inside strings are kept.
_TOKENS = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|//[^\n]*|/\*.*?\*/', re.S)
_BLANK_LINES = re.compile(r"\n\s*\n+")
_SPACE = re.compile(r"\s+")


def _strip_comment(match: re.Match) -> str:
    text = match.group(0)
    if text.startswith("//"):
        return ""
    if text.startswith("/*"):
        return " "
    return text


def normalize_code(code: str) -> str:
    """Comments removed, tabs to spaces, trailing whitespace and blank lines dropped."""
    code = code.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    code = _TOKENS.sub(_strip_comment, code)
    lines = [line.rstrip() for line in code.split("\n")]
    return _BLANK_LINES.sub("\n", "\n".join(lines)).strip("\n")


def dedup_key(normalized: str) -> str:
    return hashlib.md5(_SPACE.sub(" ", normalized).strip().encode("utf-8")).hexdigest()


@dataclass
class DedupStats:
    duplicates_removed: int = 0
    conflicting_removed: int = 0
    cross_split_removed: int = 0


def dedup(splits: dict[str, list[dict]]) -> tuple[dict[str, list[dict]], DedupStats]:
    """Drop exact duplicates (after normalization) within and across splits.

    Records must already hold normalized `code`. A key whose copies disagree on the label is removed
    from every split. Otherwise the first copy in priority order test, valid, train is kept.
    """
    labels_by_key: dict[str, set[int]] = defaultdict(set)
    for records in splits.values():
        for rec in records:
            rec["_key"] = dedup_key(rec["code"])
            labels_by_key[rec["_key"]].add(rec["label"])
    stats = DedupStats()
    seen: dict[str, str] = {}
    out: dict[str, list[dict]] = {}
    for split in sorted(splits, key=lambda s: SPLITS[::-1].index(s) if s in SPLITS else -1):
        kept = []
        for rec in splits[split]:
            key = rec.pop("_key")
            if len(labels_by_key[key]) > 1:
                stats.conflicting_removed += 1
            elif key in seen:
                stats.duplicates_removed += 1
                stats.cross_split_removed += seen[key] != split
            else:
                seen[key] = split
                kept.append(rec)
        out[split] = kept
    return {s: out[s] for s in splits}, stats


def _carve(records: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Split off about `fraction` of the records as whole groups, stratified by label.

    One fold of a K-fold split is taken, K = round(1 / fraction): the share is 1/K, the nearest such
    value to `fraction` (0.1 -> 10 %, 0.15 -> 14 %, 0.3 -> 33 %), and groups make it approximate.
    """
    n_splits = max(2, int(1 / fraction + 0.5))
    labels = np.array([r["label"] for r in records])
    groups = np.array([r["group"] for r in records])
    n_groups = len(set(groups.tolist()))
    if n_groups < n_splits:
        raise DataError(f"only {n_groups} distinct groups: too few to split off {fraction:.0%}; "
                        "provide official splits or a finer group field")
    from sklearn.model_selection import StratifiedGroupKFold  # here: scan imports this module for normalize_code

    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    rest_idx, part_idx = next(folds.split(np.zeros(len(records)), labels, groups))
    return [records[i] for i in rest_idx], [records[i] for i in part_idx]


def grouped_split(records: list[dict], valid_fraction: float, test_fraction: float, seed: int) -> dict[str, list[dict]]:
    """Seeded, stratified 3-way split; no group spans two splits."""
    rest, test = _carve(records, test_fraction, seed)
    train, valid = _carve(rest, valid_fraction / (1.0 - test_fraction), seed + 1)
    return {"train": train, "valid": valid, "test": test}


def cross_project_split(records: list[dict], test_projects: tuple[str, ...], valid_fraction: float,
                        seed: int) -> dict[str, list[dict]]:
    """Named projects form the test split; the others are split into train and valid."""
    wanted = set(test_projects)
    present = {r["project"] for r in records}
    unknown = sorted(wanted - present)
    if unknown:
        raise DataError(f"data.split.test_projects names unknown projects {unknown}; present: {sorted(present)[:20]}")
    test = [r for r in records if r["project"] in wanted]
    rest = [r for r in records if r["project"] not in wanted]
    if not rest:
        raise DataError("data.split.test_projects leaves no project for training")
    train, valid = _carve(rest, valid_fraction, seed)
    return {"train": train, "valid": valid, "test": test}


def subsample(records: list[dict], limit: int, seed: int) -> list[dict]:
    """At most `limit` records, a seeded sample in original order."""
    if len(records) <= limit:
        return records
    keep = np.sort(np.random.default_rng(seed).choice(len(records), size=limit, replace=False))
    return [records[i] for i in keep]
