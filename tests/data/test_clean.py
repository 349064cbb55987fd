import pytest

from streamguard.data import clean
from streamguard.errors import DataError


def test_normalize_strips_comments_but_not_strings():
    code = 'int f() { // note\n\n\n  char *s = "a // b /* c */";  /* block\n comment */ return 0;\t}\r\n'
    out = clean.normalize_code(code)
    assert "note" not in out and "block" not in out
    assert '"a // b /* c */"' in out
    assert "\n\n" not in out and "\t" not in out and "\r" not in out


def _rec(i, code, label, group=None, project="p"):
    return {"id": str(i), "code": clean.normalize_code(code), "label": label, "group": group or str(i), "project": project}


def test_dedup_removes_copies_and_conflicts_across_splits():
    splits = {
        "train": [_rec(1, "int a;", 0), _rec(2, "int   a; // c", 0), _rec(3, "int b;", 1), _rec(4, "int c;", 0)],
        "valid": [_rec(5, "int b;", 0)],  # conflicts with train id 3
        "test": [_rec(6, "int c;", 0)],  # duplicate of train id 4: test keeps it
    }
    out, stats = clean.dedup(splits)
    assert [r["id"] for r in out["train"]] == ["1"]
    assert out["valid"] == [] and [r["id"] for r in out["test"]] == ["6"]
    assert (stats.duplicates_removed, stats.conflicting_removed, stats.cross_split_removed) == (2, 2, 1)


def test_grouped_split_keeps_groups_whole_and_is_seeded():
    recs = [_rec(i, f"int v{i};", i % 2, group=f"g{i // 4}") for i in range(400)]
    a = clean.grouped_split(recs, 0.1, 0.1, seed=1)
    b = clean.grouped_split(recs, 0.1, 0.1, seed=1)
    c = clean.grouped_split(recs, 0.1, 0.1, seed=2)
    assert {s: [r["id"] for r in v] for s, v in a.items()} == {s: [r["id"] for r in v] for s, v in b.items()}
    assert [r["id"] for r in a["test"]] != [r["id"] for r in c["test"]]
    groups = {s: {r["group"] for r in v} for s, v in a.items()}
    assert not groups["train"] & groups["test"] and not groups["train"] & groups["valid"] and not groups["valid"] & groups["test"]
    assert 25 <= len(a["test"]) <= 60 and sum(len(v) for v in a.values()) == 400
    pos_rate = sum(r["label"] for r in a["test"]) / len(a["test"])
    assert 0.35 <= pos_rate <= 0.65


def test_cross_project_split():
    recs = [_rec(i, f"int v{i};", i % 2, project="A" if i < 60 else "B") for i in range(200)]
    out = clean.cross_project_split(recs, ("A",), 0.1, seed=0)
    assert {r["project"] for r in out["test"]} == {"A"}
    assert {r["project"] for r in out["train"] + out["valid"]} == {"B"}
    with pytest.raises(DataError, match="unknown projects"):
        clean.cross_project_split(recs, ("C",), 0.1, seed=0)


def test_too_few_groups_is_a_clear_error():
    recs = [_rec(i, f"int v{i};", i % 2, group="only") for i in range(50)]
    with pytest.raises(DataError, match="too few to split"):
        clean.grouped_split(recs, 0.1, 0.1, seed=0)
