"""Dataset identity: the md5 that DVC records for `data/processed` in dvc.lock.

Computed with DVC's own hashing (dvc-data), so the value always agrees with dvc.lock. It cannot be
stored inside the directory it describes (that would change the hash), so callers compute it.
"""
from __future__ import annotations

import pathlib
import tempfile

from ..errors import DataError


def dataset_hash(path: str | pathlib.Path = "data/processed") -> str:
    """md5 of a file or directory exactly as DVC writes it (directories end in `.dir`)."""
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_objects.fs.local import LocalFileSystem

    p = pathlib.Path(path).resolve()
    if not p.exists():
        raise DataError("not found; run the prepare stage first (dvc repro prepare)", p)
    fs = LocalFileSystem()
    with tempfile.TemporaryDirectory() as scratch:
        _, _, obj = build(HashFileDB(fs, scratch), str(p), fs, "md5", dry_run=True)
    return obj.hash_info.value
