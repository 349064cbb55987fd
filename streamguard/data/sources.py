"""Readers for the datasets users bring: JSONL / JSON / CSV / Parquet, plain or gzip.

Each reader yields normalized records `{"id", "code", "label", "group", "project"}` through a field map
(our name -> the file's column). The CodeXGLUE / Devign defect-detection layout (`func`, `target`,
`idx`, `project`, `commit_id`) needs no map. Malformed input raises DataError naming file, line, field.
Empty or oversized code is not an error: it is skipped and counted in `ReadStats`. Record ids must
be unique across every file read with one `ReadStats` (a repeated id is a DataError naming both places).
A record may name its `language` (field `language`, or as mapped): with `language` given to
`read_records`, a record of another language is a DataError (one language per prepared data set).
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import pathlib
import sys
import zlib
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..errors import DataError

REQUIRED = ("code", "label")
_TRUE = {"1", "true", "yes", "vulnerable"}
_FALSE = {"0", "false", "no", "safe"}


@dataclass
class ReadStats:
    read: int = 0
    skipped_empty: int = 0
    skipped_oversized: int = 0
    skipped_lines: list[str] = field(default_factory=list)  # "file:line reason", first few only
    id_first_seen: dict[str, str] = field(default_factory=dict, repr=False)  # id -> "file:line"

    def skip(self, kind: str, where: str) -> None:
        setattr(self, f"skipped_{kind}", getattr(self, f"skipped_{kind}") + 1)
        if len(self.skipped_lines) < 20:
            self.skipped_lines.append(f"{where} {kind}")


def detect_format(path: pathlib.Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".gzip"):
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    formats = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
    if ext not in formats:
        raise DataError(f"cannot tell the format from the name; set data.files.format (one of jsonl, json, csv, parquet)", path)
    return formats[ext]


def _is_gzip(path: pathlib.Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _open_bytes(path: pathlib.Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")  # type: ignore[return-value]


def parse_label(value: Any, path: pathlib.Path, line: int, name: str) -> int:
    """0/1, booleans, and their usual spellings; anything else is an error."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return int(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return int(value.strip().lower() in _TRUE)
    raise DataError(f"label must be binary (0/1 or true/false), got {value!r}", path, line, name)


def _normalize(raw: Any, fields: dict[str, str], path: pathlib.Path, line: int,
               max_code_chars: int, stats: ReadStats, language: str | None = None) -> dict | None:
    if not isinstance(raw, dict):
        raise DataError(f"expected an object with fields {sorted(fields.values())}, got {type(raw).__name__}", path, line)
    if language is not None:
        lang_field = fields.get("language", "language")
        lang = raw.get(lang_field)
        if lang is not None and str(lang).strip().lower() != language:
            raise DataError(f"record is {lang!r}, not graph.language {language!r} (one language per data set: "
                            "set graph.language or split the file)", path, line, lang_field)
    for key in REQUIRED:
        if fields[key] not in raw:
            raise DataError("missing required field (set data.files.fields to map it)", path, line, fields[key])
        if raw[fields[key]] is None:
            raise DataError("required field is null", path, line, fields[key])
    code = raw[fields["code"]]
    if not isinstance(code, str):
        raise DataError(f"code must be a string, got {type(code).__name__}", path, line, fields["code"])
    label = parse_label(raw[fields["label"]], path, line, fields["label"])
    stats.read += 1
    if not code.strip():
        stats.skip("empty", f"{path.name}:{line}")
        return None
    if len(code) > max_code_chars:
        stats.skip("oversized", f"{path.name}:{line}")
        return None
    rid = raw.get(fields.get("id", ""), None)
    rid = f"{path.name}:{line}" if rid is None else str(rid)
    first = stats.id_first_seen.setdefault(rid, f"{path}:{line}")
    if first != f"{path}:{line}":
        raise DataError(f"duplicate id {rid!r} (first at {first}); ids must identify records", path, line,
                        fields.get("id"))
    group = raw.get(fields.get("group", ""), None)
    project = raw.get(fields.get("project", ""), None)
    return {"id": rid, "code": code, "label": label,
            "group": str(group) if group is not None else rid,
            "project": str(project) if project is not None else ""}


def _decode(data: bytes, path: pathlib.Path, line: int) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not valid UTF-8 (byte {exc.start}); re-encode the file as UTF-8", path, line) from None


def _iter_jsonl(path: pathlib.Path) -> Iterator[tuple[int, Any]]:
    with _open_bytes(path) as fh:
        for lineno, raw in enumerate(fh, 1):
            text = _decode(raw, path, lineno).strip()
            if not text:
                continue
            try:
                yield lineno, json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(f"malformed JSON ({exc.msg} at column {exc.colno})", path, lineno) from None


def _iter_json(path: pathlib.Path) -> Iterator[tuple[int, Any]]:
    with _open_bytes(path) as fh:
        text = _decode(fh.read(), path, 1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"malformed JSON ({exc.msg} at column {exc.colno})", path, exc.lineno) from None
    if isinstance(data, dict):  # {"data": [...]} style containers
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError("expected a JSON array of records (or an object holding one array)", path, 1)
        data = lists[0]
    if not isinstance(data, list):
        raise DataError("expected a JSON array of records", path, 1)
    # JSON arrays have no useful line numbers: report the 1-based record number instead.
    yield from enumerate(data, 1)


def _iter_csv(path: pathlib.Path) -> Iterator[tuple[int, Any]]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with _open_bytes(path) as fh:
        text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
        # strict: an unclosed quote is an error instead of one field that swallows the rest of the file
        reader = csv.DictReader(text, strict=True)
        last = 1  # the line the previous record (or the header) ended on
        try:
            for row in reader:
                if None in row or None in row.values():  # more or fewer cells than the header
                    raise DataError(f"malformed CSV: {'more' if None in row else 'fewer'} cells than the "
                                    f"{len(reader.fieldnames or ())} of the header", path, last + 1)
                last = reader.line_num
                yield last, row
        except UnicodeDecodeError as exc:
            raise DataError(f"not valid UTF-8 (byte {exc.start}); re-encode the file as UTF-8", path, reader.line_num + 1) from None
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                raise DataError("malformed CSV: unclosed quote (a quoted field starting in this record runs to "
                                "the end of the file)", path, last + 1) from None
            raise DataError(f"malformed CSV ({exc})", path, reader.line_num) from None


def _iter_parquet(path: pathlib.Path) -> Iterator[tuple[int, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError("reading Parquet needs pyarrow: pip install 'streamguard[parquet]'", path) from None
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise DataError(f"cannot read Parquet ({exc})", path) from None
    for i, row in enumerate(table.to_pylist(), 1):
        yield i, row


_READERS = {"jsonl": _iter_jsonl, "json": _iter_json, "csv": _iter_csv, "parquet": _iter_parquet}


def read_records(path: str | pathlib.Path, fields: dict[str, str], fmt: str = "auto",
                 max_code_chars: int = 200_000, stats: ReadStats | None = None,
                 language: str | None = None) -> list[dict]:
    """Read one file into normalized records; raises DataError on the first malformed record."""
    p = pathlib.Path(path)
    if not p.exists():
        raise DataError("file not found", p)
    if p.is_dir():
        raise DataError("is a directory, expected a data file", p)
    if p.stat().st_size == 0:
        raise DataError("file is empty", p)
    missing = [k for k in REQUIRED if k not in fields]
    if missing:
        raise DataError(f"field map lacks {missing}", p)
    stats = stats if stats is not None else ReadStats()
    reader = _READERS[detect_format(p) if fmt == "auto" else fmt]
    records = []
    lineno = 0
    try:
        for lineno, raw in reader(p):
            rec = _normalize(raw, fields, p, lineno, max_code_chars, stats, language)
            if rec is not None:
                records.append(rec)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:  # a cut download or a damaged archive
        raise DataError(f"truncated or corrupt gzip data after line {lineno} ({exc}); download the file again",
                        p) from None
    except OSError as exc:
        raise DataError(f"cannot read ({exc.strerror or exc})", p) from None
    if stats.read == 0:
        raise DataError("no records found", p)
    return records
