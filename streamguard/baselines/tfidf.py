"""Bag-of-tokens baseline: TF-IDF over C tokens (1-2 grams) + logistic regression.

The vectorizer and classifier are defined in `data/lexical.py`, where the fusion's lexical view fits
the very same model, so the baseline and that view never drift apart.

One definition for the benches, the tests and a later pipeline stage, so their figures are comparable.
A pure function of its inputs: it reads and writes no files.
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

import numpy as np
from scipy.special import expit

from ..data.lexical import TOKEN_PATTERN, LexicalModel, make_vectorizer
from ..errors import DataError

_TOKEN_RE = re.compile(TOKEN_PATTERN)


def tokenize(code: str) -> list[str]:
    """The tokens the vectorizer sees (C is case-sensitive, so nothing is lowercased)."""
    return _TOKEN_RE.findall(code)


def fit_predict(train_codes: Sequence[str], train_labels: Sequence[int],
                eval_codes: Mapping[str, Sequence[str]], seed: int) -> dict[str, np.ndarray]:
    """Fit on the training functions; return P(vulnerable) as float64 `[n]` for each named split.

    The vocabulary and IDF weights come from `train_codes` only, so evaluation splits never leak into
    the features. Same inputs and seed give the same probabilities.
    """
    labels = np.asarray(train_labels, dtype=np.int64)
    if len(labels) != len(train_codes):
        raise DataError(f"tfidf baseline: {len(train_codes)} training functions but {len(labels)} labels")
    if set(labels.tolist()) != {0, 1}:
        raise DataError(f"tfidf baseline: training labels must include both 0 and 1, got {sorted(set(labels.tolist()))}")
    model = LexicalModel.fit(list(train_codes), labels, seed)
    # P(vulnerable) is the logistic of the lexical view's logit: one fitted model, two readings.
    return {name: expit(model.logits(list(codes))) for name, codes in eval_codes.items()}
