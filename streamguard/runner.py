"""Shared entry-point plumbing for stages and the CLI: logging setup, one-line errors, signals."""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Callable

from .errors import StreamGuardError, Terminated

EXIT_SIGINT, EXIT_SIGTERM = 128 + signal.SIGINT, 128 + signal.SIGTERM  # the shell's convention


def setup_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose or os.environ.get("STREAMGUARD_DEBUG") else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def _sigterm_handler(owner: int) -> Callable:
    def handler(signum, frame):
        if os.getpid() != owner:  # a forked child inherited this handler: die as SIGTERM intends
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Terminated
    return handler


def guarded(main: Callable[[], int | None]) -> int:
    """Run `main`; a StreamGuardError becomes one line on stderr and exit code 2.

    SIGINT and SIGTERM unwind the stack (so temporary files and worker pools are cleaned up by the
    code that made them), then print one line and exit 130 / 143.
    """
    setup_logging()
    # Python signal handlers can only be set from the main thread.
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _sigterm_handler(os.getpid()))
    try:
        return main() or 0
    except StreamGuardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_SIGINT
    except Terminated:
        print("error: interrupted (SIGTERM)", file=sys.stderr)
        return EXIT_SIGTERM
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
