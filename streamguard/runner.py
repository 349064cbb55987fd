"""Shared entry-point plumbing for stages and the CLI: logging setup and one-line errors."""
from __future__ import annotations

import logging
import os
import sys
from typing import Callable

from .errors import StreamGuardError


def setup_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose or os.environ.get("STREAMGUARD_DEBUG") else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def guarded(main: Callable[[], int | None]) -> int:
    """Run `main`; a StreamGuardError becomes one line on stderr and exit code 2."""
    setup_logging()
    try:
        return main() or 0
    except StreamGuardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
