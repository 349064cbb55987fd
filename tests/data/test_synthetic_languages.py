"""Java and Python synthetic data: determinism, twin structure, real parses, taint, and the C output kept."""
from __future__ import annotations

import collections
import hashlib
import json

import numpy as np
import pytest
from sklearn.model_selection import GroupShuffleSplit

from streamguard.baselines.tfidf import fit_predict
from streamguard.data.sources import read_records
from streamguard.data.synthetic import generate
from streamguard.errors import ConfigError, DataError
from streamguard.graphs.builder import build_statement_graph

LANGS = ("java", "python")


@pytest.fixture(scope="module", params=LANGS)
def lang_records(request) -> tuple[str, list[dict]]:
    return request.param, generate(300, seed=13, language=request.param)


def test_c_output_is_unchanged():
    # The digest of the C generator's output before other languages existed.
    recs = generate(300, seed=5)
    assert recs == generate(300, seed=5, language="c")
    digest = hashlib.sha256(json.dumps(recs).encode()).hexdigest()
    assert digest == "8c9e5c7e84c2b74ac5bcf4eb20d3f83ea48e0015f87a6526af9ad31d37305235"


@pytest.mark.parametrize("lang", LANGS)
def test_deterministic_and_seed_dependent(lang):
    a, b = generate(60, seed=3, language=lang), generate(60, seed=3, language=lang)
    assert a == b and a != generate(60, seed=4, language=lang)
    assert a != generate(60, seed=3)  # not the C data


def test_pairs_share_group_and_calls(lang_records):
    lang, recs = lang_records
    groups: dict[str, list[dict]] = collections.defaultdict(list)
    for r in recs:
        groups[r["group"]].append(r)
    assert sum(r["label"] for r in recs) == 150 and len(groups) == 150
    assert {r["cwe"] for r in recs} == {"CWE-89", "CWE-78"}
    for pair in groups.values():
        assert sorted(r["label"] for r in pair) == [0, 1] and pair[0]["cwe"] == pair[1]["cwe"]
        graphs = [build_statement_graph(r["code"], language=lang) for r in pair]
        # Same API vocabulary: only the data flow differs between the twins.
        apis = [sorted({a for n in g.nodes for a in n.apis}) for g in graphs]
        assert apis[0] == apis[1]
        assert all(any(n.is_sink for n in g.nodes) for g in graphs)


def test_every_function_parses_and_vulnerable_twins_carry_taint(lang_records):
    lang, recs = lang_records
    counts = collections.Counter()
    for r in recs:
        g = build_statement_graph(r["code"], language=lang)
        assert g.parse_ok, r["code"]
        counts[r["label"], bool(g.edges_of("taint"))] += 1
    assert counts[1, False] == 0  # every vulnerable twin has a taint path into its sink
    assert counts[0, False] > 0.4 * 150  # and many safe twins have none


def test_multi_hop_flows_and_the_bind_strategy(lang_records):
    lang, recs = lang_records
    long_paths = 0
    for r in recs:
        if r["label"] == 1:
            g = build_statement_graph(r["code"], language=lang)
            long_paths += len(g.edges_of("taint")) >= 3
    assert long_paths > 50
    bound = "setString(1, " if lang == "java" else ",))"
    assert any(bound in r["code"] for r in recs)


@pytest.mark.parametrize("lang", LANGS)
def test_bag_of_tokens_baseline_stays_far_from_perfect(lang):
    recs = generate(1200, seed=42, language=lang)
    codes, y, groups = [r["code"] for r in recs], np.array([r["label"] for r in recs]), [r["group"] for r in recs]
    train, test = next(GroupShuffleSplit(n_splits=1, test_size=0.2, random_state=0).split(codes, y, groups))
    proba = fit_predict([codes[i] for i in train], y[train], {"test": [codes[i] for i in test]}, seed=0)["test"]
    assert float(((proba >= 0.5) == y[test]).mean()) < 0.8


def test_unknown_language_and_foreign_cwe_are_config_errors():
    with pytest.raises(ConfigError, match="language 'rust'"):
        generate(10, seed=1, language="rust")
    with pytest.raises(ConfigError, match="CWE-134.*'java'"):
        generate(10, seed=1, cwes=["CWE-134"], language="java")
    assert {r["cwe"] for r in generate(20, seed=1, cwes=["78"], language="python")} == {"CWE-78"}


def test_records_of_another_language_are_refused(tmp_path):
    path = tmp_path / "mixed.jsonl"
    rows = [{"func": "int f(void) { return 0; }", "target": 0, "language": "c"},
            {"func": "def f():\n    return 0\n", "target": 1, "language": "Python"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    fields = {"code": "func", "label": "target"}
    with pytest.raises(DataError) as err:
        read_records(path, fields, language="c")
    assert "mixed.jsonl" in str(err.value) and "2" in str(err.value) and "language" in str(err.value)
    assert len(read_records(path, fields)) == 2  # no language asked: the field is not read
    path.write_text(json.dumps(rows[1]) + "\n")
    assert len(read_records(path, fields, language="python")) == 1  # case-insensitive
