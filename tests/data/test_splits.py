import pytest

from streamguard.data.splits import read_split
from streamguard.errors import DataError


def test_records_come_with_their_line_numbers_and_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"code": "int a;", "label": 0}\n\n   \n{"code": "int b;", "label": 1, "cwe": "CWE-89"}\n')
    assert read_split(path, ("code", "label")) == [(1, {"code": "int a;", "label": 0}),
                                                   (4, {"code": "int b;", "label": 1, "cwe": "CWE-89"})]


@pytest.mark.parametrize("line, fields, message", [
    ('{"code": 3, "label": 1}', ("code", "label"), "line:2, field 'code': expected a string, got 3"),
    ('{"code": "x", "label": true}', ("label",), "line:2, field 'label': expected 0 or 1, got True"),
    ('{"code": "x", "label": 1.5}', ("label",), "line:2, field 'label': expected 0 or 1, got 1.5"),
    ('{"code": "x", "label": NaN}', ("label",), "line:2: invalid JSON (non-finite number NaN in strict JSON)"),
    ('{"code": "x", "label": 1', ("label",), "line:2: invalid JSON"),
    ('["x", 1]', (), "line:2: expected a JSON object"),
])
def test_a_bad_record_is_one_line_naming_file_line_and_field(tmp_path, line, fields, message):
    path = tmp_path / "line"
    path.write_text('{"code": "int a;", "label": 0}\n' + line + "\n")
    with pytest.raises(DataError) as info:
        read_split(path, fields)
    assert str(info.value).startswith(f"{path}:2") and message.split("line", 1)[1] in str(info.value)
    assert "\n" not in str(info.value)


def test_only_the_fields_asked_for_are_required(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text('{"label": 1}\n')
    assert read_split(path) == [(1, {"label": 1})]
    with pytest.raises(DataError, match="field 'code': expected a string, got None"):
        read_split(path, ("code",))


def test_missing_and_undecodable_files_are_one_line(tmp_path):
    with pytest.raises(DataError, match=r"nothing.jsonl: not found; run the prepare stage first"):
        read_split(tmp_path / "nothing.jsonl")
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes('{"code": "caf\xe9", "label": 0}\n'.encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.jsonl: cannot read the split \(UnicodeDecodeError: "):
        read_split(bad)
