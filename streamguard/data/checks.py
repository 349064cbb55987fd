"""What a prepared dataset must satisfy to be trained and evaluated, and what merely weakens it.

`check_splits(splits) -> warnings` raises DataError (one line) for a split that cannot serve:
an empty split, a training split with one class (nothing to learn), a validation or test split with
one class (threshold tuning and ROC-AUC need both). Splits smaller than `MIN_SPLIT_SIZE` are only
warned about: the figures computed on them are noisy, not wrong. Each warning is logged and
returned for dataset_stats.json. (Repeated record ids are refused where the files are read,
`sources.py`, which knows the file and line.)
"""
from __future__ import annotations

import logging

from ..errors import DataError

log = logging.getLogger("streamguard.data")
MIN_SPLIT_SIZE = 50  # below this a split's metrics swing by several points per sample
_WHY_BOTH = {"train": "a model cannot learn from one class",
             "valid": "the decision threshold and ROC-AUC need both classes",
             "test": "ROC-AUC and the test metrics need both classes"}


def check_splits(splits: dict[str, list[dict]]) -> list[str]:
    warnings = []
    for name, records in splits.items():
        if not records:
            raise DataError(f"the {name} split is empty after cleaning; provide more data")
        labels = {r["label"] for r in records}
        if len(labels) < 2:
            only = "vulnerable" if labels == {1} else "safe"
            why = _WHY_BOTH.get(name, "both classes are needed")
            raise DataError(f"the {name} split holds only {only} samples ({len(records)}): {why}; "
                            "provide samples of both labels")
        if len(records) < MIN_SPLIT_SIZE:
            warnings.append(f"the {name} split has only {len(records)} samples (< {MIN_SPLIT_SIZE}): "
                            "its metrics are noisy")
    for w in warnings:
        log.warning("%s", w)
    return warnings
