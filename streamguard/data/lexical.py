"""The lexical view of a function: the TF-IDF + LR baseline's logit, as an input the fusion can use.

The vectorizer (C tokens, 1-2 grams) and the classifier are defined here, once, for this view and for
the baseline stage (`baselines/tfidf.py`). prepare fits them on the training split and writes, under
`data/processed/lexical/`:

    vocabulary.json        the n-gram terms in feature order, with the vectorizer settings
    weights.safetensors    idf, coef, intercept (float64): the fitted model, loadable without pickle
    {train,valid,test}.npy one logit per function, in split order

The train logits are out-of-fold (each from a model fit on the other folds, the folds grouped so a
function and its twin share one), so a model trained on them learns how far the lexical signal holds on
unseen code, not how well the LR memorised its own training set. Valid and test logits, and every
function scanned later, come from the model fit on the whole training split.
"""
from __future__ import annotations

import pathlib
from typing import Sequence

import numpy as np

from ..errors import DataError
from ..io import read_json, save_numpy_atomic, write_json_atomic

DIR = "lexical"
VOCAB_FILE = "vocabulary.json"
WEIGHTS_FILE = "weights.safetensors"
FORMAT = 1

# Identifiers, numbers, two-character operators, then any single punctuation character. The operators
# come before `[^\s\w]` so that `->`, `<<` or `++` stay one token instead of two punctuation marks.
TOKEN_PATTERN = r"[A-Za-z_]\w*|\d+|->|\+\+|--|<<|>>|[<>=!]=|&&|\|\||[^\s\w]"

MIN_DF = 2  # a token seen in one training function only is noise for a linear model
MAX_FEATURES = 200_000  # bounds memory on Devign-sized data; the synthetic sets stay far below it
MAX_ITER = 2000


def vectorizer_settings() -> dict:
    """The vectorizer's settings, JSON-able (recorded beside a saved lexical model)."""
    return {"token_pattern": TOKEN_PATTERN, "ngram_range": [1, 2], "min_df": MIN_DF, "max_features": MAX_FEATURES,
            "sublinear_tf": True, "lowercase": False}


def make_vectorizer(vocabulary: Sequence[str] | None = None):
    """A fresh vectorizer; with `vocabulary` (terms in feature order) one whose `idf_` the caller sets."""
    from sklearn.feature_extraction.text import TfidfVectorizer  # scikit-learn only where a model is fit or read

    settings = vectorizer_settings()
    settings["ngram_range"] = tuple(settings["ngram_range"])
    if vocabulary is not None:  # a fitted vocabulary: frequency cut-offs no longer apply
        return TfidfVectorizer(**settings | {"min_df": 1, "max_features": None}, vocabulary=list(vocabulary))
    return TfidfVectorizer(**settings)


def make_classifier(seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=MAX_ITER, C=1.0, random_state=seed)


class LexicalModel:
    """A fitted TF-IDF vectorizer + linear classifier: `logits(codes)` -> float64 `[n]`."""

    def __init__(self, vectorizer, coef: np.ndarray, intercept: float):
        self.vectorizer, self.coef, self.intercept = vectorizer, np.asarray(coef, dtype=np.float64), float(intercept)

    @classmethod
    def fit(cls, codes: Sequence[str], labels: Sequence[int], seed: int) -> "LexicalModel":
        vec = make_vectorizer()
        clf = make_classifier(seed).fit(vec.fit_transform(list(codes)), np.asarray(labels, dtype=np.int64))
        sign = 1.0 if list(clf.classes_) == [0, 1] else -1.0  # the logit of class 1
        return cls(vec, sign * clf.coef_[0], sign * clf.intercept_[0])

    def logits(self, codes: Sequence[str]) -> np.ndarray:
        if len(codes) == 0:
            return np.empty(0, dtype=np.float64)
        return np.asarray(self.vectorizer.transform(list(codes)) @ self.coef, dtype=np.float64) + self.intercept

    def save(self, out: pathlib.Path) -> None:
        from safetensors.numpy import save_file

        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / VOCAB_FILE, {"format": FORMAT, "settings": vectorizer_settings(),
                                             "terms": self.vectorizer.get_feature_names_out().tolist()})
        save_file({"idf": np.ascontiguousarray(self.vectorizer.idf_, dtype=np.float64), "coef": self.coef,
                   "intercept": np.array([self.intercept])}, str(out / WEIGHTS_FILE))

    @classmethod
    def load(cls, root: pathlib.Path) -> "LexicalModel":
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        vocab = read_json(root / VOCAB_FILE)
        if vocab.get("format") != FORMAT or not isinstance(vocab.get("terms"), list):
            raise DataError(f"not a lexical model of format {FORMAT}", root / VOCAB_FILE, field="format")
        try:
            weights = load_file(str(root / WEIGHTS_FILE))
        except (SafetensorError, OSError) as exc:
            raise DataError(f"unreadable ({str(exc).splitlines()[0]})", root / WEIGHTS_FILE) from None
        n = len(vocab["terms"])
        for name in ("idf", "coef"):
            if weights.get(name) is None or weights[name].shape != (n,):
                raise DataError(f"'{name}' must hold {n} values, one per term of {VOCAB_FILE}", root / WEIGHTS_FILE, field=name)
        vec = make_vectorizer(vocabulary=vocab["terms"])
        vec.idf_ = weights["idf"]
        return cls(vec, weights["coef"], float(weights["intercept"][0]))


def fold_ids(labels: np.ndarray, groups: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """Fold of each training sample: stratified by label, a group (a function and its twin) in one fold."""
    from sklearn.model_selection import StratifiedGroupKFold

    out = np.full(len(labels), -1, dtype=np.int64)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (_, held) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups)):
        out[held] = k
    return out


def out_of_fold_logits(codes: Sequence[str], labels: Sequence[int], groups: Sequence[str], folds: int,
                       seed: int) -> np.ndarray:
    labels = np.asarray(labels, dtype=np.int64)
    ids = fold_ids(labels, groups, folds, seed)
    logits = np.zeros(len(labels), dtype=np.float64)
    for k in range(folds):
        fit, held = np.flatnonzero(ids != k), np.flatnonzero(ids == k)
        model = LexicalModel.fit([codes[i] for i in fit], labels[fit], seed)
        logits[held] = model.logits([codes[i] for i in held])
    return logits


def write_lexical(splits: dict[str, list[dict]], out: pathlib.Path, folds: int, seed: int) -> dict:
    """Fit on train, write the model and every split's logits under `out`; returns stats for dataset_stats."""
    train = splits["train"]
    codes, labels = [r["code"] for r in train], [r["label"] for r in train]
    model = LexicalModel.fit(codes, labels, seed)
    model.save(out)
    logits = {"train": out_of_fold_logits(codes, labels, [r["group"] for r in train], folds, seed)}
    for s in splits:
        if s != "train":
            logits[s] = model.logits([r["code"] for r in splits[s]])
    for s, values in logits.items():
        save_numpy_atomic(out / f"{s}.npy", values.astype(np.float32))
    return {"terms": len(model.coef), "folds": folds}


def load_logits(processed: pathlib.Path, split: str) -> np.ndarray:
    path = processed / DIR / f"{split}.npy"
    if not path.exists():
        raise DataError("not found; the fusion's lexical view needs prepare with lexical.enabled: true "
                        "(dvc repro prepare), or set fusion.lexical: false", path)
    return np.load(path, allow_pickle=False)
