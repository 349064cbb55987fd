"""Replace a directory as a whole: build it in a temporary sibling, swap it in, roll back on failure.

Sibling names carry the pid of the process that made them: `.{name}.tmp-{pid}-XXXXXXXX` while being
built, `.{name}.old-{pid}` for the previous copy during the swap. A process killed outright (kill -9,
power loss) leaves them behind; `clean_stale` removes those of processes that no longer run at the
next start, and when a swap was cut between its two renames (so `out_dir` is missing) it first
moves the old copy back. Two prepares writing the same directory at once are not supported.
"""
from __future__ import annotations

import logging
import os
import pathlib
import re
import shutil
import tempfile

log = logging.getLogger("streamguard.data")


def make_temp(out_dir: pathlib.Path) -> pathlib.Path:
    """A fresh empty sibling of `out_dir` to build the new content in."""
    return pathlib.Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-{os.getpid()}-", dir=out_dir.parent))


def replace_dir(tmp: pathlib.Path, out_dir: pathlib.Path) -> None:
    """Swap `tmp` into place as `out_dir`; the old copy is removed only after the swap, and put back
    if the second rename fails."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.replace(out_dir, old)
    try:
        os.replace(tmp, out_dir)
    except BaseException:
        if old is not None:
            os.replace(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():  # ours from an earlier life of this pid: this process has not made any yet
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def clean_stale(out_dir: pathlib.Path) -> None:
    """Remove the temp and old siblings of `out_dir` left by dead processes (see the module doc)."""
    # Before pids were in the names, temp dirs were `.{name}.tmp-XXXXXXXX` (mkdtemp's 8 characters).
    pattern = re.compile(rf"\.{re.escape(out_dir.name)}\.(tmp|old)-(?:(\d+)(?:-\w+)?|\w{{8}})")
    if not out_dir.parent.is_dir():
        return
    stale = []
    for p in sorted(out_dir.parent.iterdir()):
        m = pattern.fullmatch(p.name)
        if m and p.is_dir() and not (m[2] and _alive(int(m[2]))):
            stale.append((m[1], p))
    for kind, p in stale:
        if kind == "old" and not out_dir.exists():
            os.replace(p, out_dir)
            log.warning("%s was missing after an interrupted swap: restored it from %s", out_dir, p.name)
        else:
            shutil.rmtree(p, ignore_errors=True)
            log.info("removed %s, left by a process that no longer runs", p)
