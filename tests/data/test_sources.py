import gzip
import json

import pytest

from streamguard.config import FilesConfig
from streamguard.data.sources import ReadStats, read_records
from streamguard.errors import DataError

DEVIGN_FIELDS = FilesConfig().fields


def write_jsonl(path, rows, gz=False):
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


ROWS = [{"func": "int f(){return 1;}", "target": 0, "project": "p", "commit_id": "c1", "idx": 0},
        {"func": "void g(char*s){char b[4];strcpy(b,s);}", "target": True, "project": "p", "commit_id": "c2", "idx": 1}]


@pytest.mark.parametrize("gz", [False, True])
def test_devign_layout_needs_no_field_map(tmp_path, gz):
    recs = read_records(write_jsonl(tmp_path / "a.jsonl.gz" if gz else tmp_path / "a.jsonl", ROWS, gz), DEVIGN_FIELDS)
    assert [r["label"] for r in recs] == [0, 1]
    assert recs[1] == {"id": "1", "code": ROWS[1]["func"], "label": 1, "group": "c2", "project": "p"}


def test_csv_json_and_parquet_with_field_map(tmp_path):
    import pandas as pd
    df = pd.DataFrame({"src": ["int a;", "int b;"], "vuln": ["false", "1"], "name": ["x", "y"]})
    fields = {"code": "src", "label": "vuln", "id": "name"}
    df.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "d.json").write_text(df.to_json(orient="records"))
    df.to_parquet(tmp_path / "d.parquet")
    for name in ("d.csv", "d.json", "d.parquet"):
        recs = read_records(tmp_path / name, fields)
        assert [(r["id"], r["label"]) for r in recs] == [("x", 0), ("y", 1)], name
        assert recs[0]["group"] == "x"  # no group field: each sample is its own group


@pytest.mark.parametrize("content, message", [
    (b'{"func": "int a;", "target": 0}\n{"func": "int b;", "target": \n', r"bad\.jsonl:2: malformed JSON"),
    (b'{"func": "int a;", "target": 0}\n{"func": "int b;"}\n', r"bad\.jsonl:2, field 'target': missing required field"),
    (b'{"target": 1}\n', r"bad\.jsonl:1, field 'func': missing required field"),
    (b'{"func": "int a;", "target": 2}\n', r"bad\.jsonl:1, field 'target': label must be binary"),
    (b'{"func": "int a;", "target": "maybe"}\n', r"field 'target': label must be binary"),
    (b'{"func": "int a;", "target": 0}\n{"func": "\xff\xfe", "target": 0}\n', r"bad\.jsonl:2: not valid UTF-8"),
    (b'{"func": 12, "target": 0}\n', r"field 'func': code must be a string"),
    (b'[1, 2]\n', r"bad\.jsonl:1: expected an object"),
    (b'', r"bad\.jsonl: file is empty"),
])
def test_bad_input_is_one_line_error_naming_file_line_field(tmp_path, content, message):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        read_records(p, DEVIGN_FIELDS)
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.jsonl: file not found"):
        read_records(tmp_path / "nope.jsonl", DEVIGN_FIELDS)


def test_empty_and_oversized_code_are_counted_skips(tmp_path):
    rows = ROWS + [{"func": "   \n", "target": 0}, {"func": "int x;" * 200_000, "target": 1}]
    stats = ReadStats()
    recs = read_records(write_jsonl(tmp_path / "a.jsonl", rows), DEVIGN_FIELDS, max_code_chars=1_000_000, stats=stats)
    assert len(recs) == 2
    assert (stats.read, stats.skipped_empty, stats.skipped_oversized) == (4, 1, 1)


def test_unknown_extension_asks_for_format(tmp_path):
    p = tmp_path / "data.txt"
    p.write_text("x")
    with pytest.raises(DataError, match="set data.files.format"):
        read_records(p, DEVIGN_FIELDS)


def test_real_devign_file_reads(devign_dir):
    recs = read_records(devign_dir / "valid.jsonl.gz", DEVIGN_FIELDS)
    assert len(recs) > 2000
    assert {r["label"] for r in recs} == {0, 1}
    assert {r["project"] for r in recs} == {"FFmpeg", "qemu"}
