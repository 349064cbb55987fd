"""The TF-IDF + logistic-regression baseline on tiny hand-made C snippets."""
from __future__ import annotations

import numpy as np
import pytest

from streamguard.baselines.tfidf import fit_predict, make_vectorizer, tokenize
from streamguard.errors import DataError

# Two classes with disjoint vocabularies; every token occurs in several functions so min_df keeps it.
VULN = [f"int f{i}(void) {{ char *cmd = getenv(\"CMD\"); system(cmd); return {i}; }}" for i in range(8)]
SAFE = [f"int g{i}(void) {{ puts(\"ok\"); fflush(stdout); return {i}; }}" for i in range(8)]
TRAIN = VULN + SAFE
LABELS = [1] * len(VULN) + [0] * len(SAFE)
EVAL = {
    "vuln": ["long h(void) { char *cmd = getenv(\"PATH\"); system(cmd); return -1; }"],
    "safe": ["long k(void) { puts(\"done\"); fflush(stdout); return 2; }"],
}


@pytest.mark.parametrize("code, tokens", [
    ("a->b", ["a", "->", "b"]),
    ("x<<2", ["x", "<<", "2"]),
    ("y >> 3", ["y", ">>", "3"]),
    ("i++", ["i", "++"]),
    ("n--", ["n", "--"]),
    ("a!=b&&c||d<=e", ["a", "!=", "b", "&&", "c", "||", "d", "<=", "e"]),
    ('buf[0] = "s";', ["buf", "[", "0", "]", "=", '"', "s", '"', ";"]),
    ("NULL _tmp1", ["NULL", "_tmp1"]),  # case is kept: C identifiers are case-sensitive
])
def test_token_pattern(code, tokens):
    assert tokenize(code) == tokens


def test_vectorizer_uses_the_same_tokens_and_keeps_case():
    vec = make_vectorizer()
    assert vec.build_tokenizer()("p->q<<1") == tokenize("p->q<<1")
    vec.fit(["NULL -> x", "NULL -> y"])
    assert {"NULL", "->", "NULL ->"} <= set(vec.vocabulary_)
    assert "null" not in vec.vocabulary_


def test_separates_two_obviously_different_token_sets():
    probs = fit_predict(TRAIN, LABELS, EVAL | {"train": TRAIN}, seed=0)
    assert set(probs) == {"vuln", "safe", "train"}
    assert probs["vuln"][0] > 0.6 and probs["safe"][0] < 0.4
    train = probs["train"]
    assert train.shape == (len(TRAIN),) and train.dtype == np.float64
    assert train[: len(VULN)].min() > train[len(VULN):].max()


def test_same_seed_gives_the_same_probabilities_and_eval_splits_do_not_leak():
    first = fit_predict(TRAIN, LABELS, EVAL, seed=3)
    again = fit_predict(TRAIN, LABELS, EVAL, seed=3)
    for name in EVAL:
        assert np.array_equal(first[name], again[name])
    # Vocabulary and IDF come from the training split alone: another split does not move the scores.
    more = fit_predict(TRAIN, LABELS, {"vuln": EVAL["vuln"], "extra": ["int z(void) { exit(0); }"] * 5}, seed=3)
    assert np.array_equal(more["vuln"], first["vuln"])


def test_empty_split_gives_an_empty_array():
    assert fit_predict(TRAIN, LABELS, {"test": []}, seed=0)["test"].shape == (0,)


@pytest.mark.parametrize("labels, message", [([0] * len(TRAIN), "both 0 and 1"), ([1, 0], "16 training functions")])
def test_bad_labels_are_a_data_error(labels, message):
    with pytest.raises(DataError, match=message):
        fit_predict(TRAIN, labels, EVAL, seed=0)
