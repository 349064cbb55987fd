"""Read the prepared splits' records, `data/processed/splits/{train,valid,test}.jsonl`.

`read_split(path, fields=("label",)) -> [(line number, record), ...]`: one reader for every consumer (the
baseline, the report, the pretraining corpus), so a damaged file is the same one-line error everywhere.
"""
from __future__ import annotations

import os
import pathlib
from typing import Sequence

from ..errors import DataError, one_line
from ..io import loads_strict

# What a record must hold for each field a reader asks for.
_FIELDS = {"label": (lambda v: v in (0, 1) and not isinstance(v, bool), "0 or 1"),
           "code": (lambda v: isinstance(v, str), "a string"),
           "group": (lambda v: isinstance(v, str), "a string")}


def read_split(path: str | os.PathLike, fields: Sequence[str] = ("label",)) -> list[tuple[int, dict]]:
    """`(line number, record)` for each non-blank line, in order (the order of the split's tensors).

    Every record must be a JSON object (strict: no NaN) whose `fields` hold valid values; anything else
    is a DataError naming the file, the line and the field.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError("not found; run the prepare stage first (dvc repro prepare)", path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the split ({type(exc).__name__}: {one_line(exc)})", path) from exc
    records = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            record = loads_strict(text)
        except ValueError as exc:
            raise DataError(f"invalid JSON ({one_line(exc)})", path, number) from None
        if not isinstance(record, dict):
            raise DataError("expected a JSON object", path, number)
        for name in fields:
            valid, expected = _FIELDS[name]
            if not valid(record.get(name)):
                raise DataError(f"expected {expected}, got {record.get(name)!r}", path, number, name)
        records.append((number, record))
    return records
