"""Where the StreamGuard project is: the nearest directory at or above the working directory holding
dvc.yaml. Kept apart from scan and training so the light commands (`lr-cache`) find it without
importing torch."""
from __future__ import annotations

import pathlib


def project_root(start: pathlib.Path | None = None) -> pathlib.Path | None:
    """The nearest directory at or above `start` (default: the working directory) holding dvc.yaml."""
    here = (start or pathlib.Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "dvc.yaml").is_file():
            return d
    return None
