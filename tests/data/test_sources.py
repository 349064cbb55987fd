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


def test_null_required_field_says_null_not_missing(tmp_path):
    p = tmp_path / "nulls.jsonl"
    p.write_text('{"func": "int a;", "target": 0}\n{"func": "int b;", "target": null}\n')
    with pytest.raises(DataError, match=r"nulls\.jsonl:2, field 'target': required field is null$"):
        read_records(p, DEVIGN_FIELDS)


def test_csv_unclosed_quote_is_reported_at_its_record(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text('func,target\n"int f() { return 0; }",1\n"int g() {,0\nint h() { return 1; },1\n')
    with pytest.raises(DataError, match=r"q\.csv:3: malformed CSV: unclosed quote") as err:
        read_records(p, {"code": "func", "label": "target"})
    assert "missing required field" not in str(err.value) and "\n" not in str(err.value)


def test_csv_row_with_too_few_cells_is_malformed_not_missing(tmp_path):
    p = tmp_path / "short.csv"
    p.write_text('func,target,idx\n"int f();",1,a\n"int g();"\n')
    with pytest.raises(DataError, match=r"short\.csv:3: malformed CSV: fewer cells than the 3 of the header"):
        read_records(p, {"code": "func", "label": "target", "id": "idx"})


def test_truncated_gzip_is_one_line_naming_the_file(tmp_path):
    rows = [{**ROWS[i % 2], "idx": i} for i in range(400)]
    full = write_jsonl(tmp_path / "full.jsonl.gz", rows, gz=True).read_bytes()
    p = tmp_path / "cut.jsonl.gz"
    p.write_bytes(full[: len(full) // 2])  # an interrupted download
    with pytest.raises(DataError, match=r"cut\.jsonl\.gz: truncated or corrupt gzip data") as err:
        read_records(p, DEVIGN_FIELDS)
    assert "\n" not in str(err.value)


def test_duplicate_ids_are_refused_naming_the_id_and_both_places(tmp_path):
    rows = [{"func": f"int f{i}(void) {{ return {i}; }}", "target": i % 2, "idx": 7} for i in range(200)]
    p = write_jsonl(tmp_path / "dup.jsonl", rows)
    with pytest.raises(DataError, match=r"dup\.jsonl:2, field 'idx': duplicate id '7' \(first at .*dup\.jsonl:1\)"):
        read_records(p, DEVIGN_FIELDS)


def test_duplicate_ids_across_split_files_are_refused(tmp_path):
    stats = ReadStats()
    read_records(write_jsonl(tmp_path / "train.jsonl", ROWS), DEVIGN_FIELDS, stats=stats)
    with pytest.raises(DataError, match=r"valid\.jsonl:1, field 'idx': duplicate id '0' \(first at .*train\.jsonl:1\)"):
        read_records(write_jsonl(tmp_path / "valid.jsonl", ROWS[:1]), DEVIGN_FIELDS, stats=stats)
