"""Build many statement graphs, in a process pool when the batch is large.

`build_graphs(codes, max_nodes, workers=None, chunksize=64, min_parallel=2000, language="c") -> list[StatementGraph]`

Results come back in input order and are identical to calling `build_statement_graph` on each
input in turn (the builder is deterministic). Batches smaller than `min_parallel`, or
`workers <= 1`, run in this process. Workers are forked where the platform can (as torch's
DataLoader does on Linux): they start in milliseconds, whereas `forkserver`/`spawn` workers take
about a second each time to re-import the caller's modules. Workers only run tree-sitter and
plain Python, never the parent's threads (tokenizers, torch). Pass `start_method="forkserver"`
(or "spawn", the fallback where fork is missing) to avoid fork; the caller's script then needs
the usual `if __name__ == "__main__":` guard.

Workers ignore SIGINT and die on SIGTERM: a Ctrl-C (which the terminal sends to every process of
the group) reaches only the parent, whose KeyboardInterrupt leaves the pool's `with` block and
terminates the workers, instead of interrupting workers mid-task, which can hang the pool.

The cyclic garbage collector is paused while a batch is built: the builder creates no reference
cycles, and a collector scanning tens of thousands of fresh graphs would cost more than building
them. Its previous state is restored afterwards.
"""
from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import sys
import threading
from typing import Iterator, Sequence

from tqdm.auto import tqdm

from .builder import build_statement_graph
from .graph import StatementGraph
from .languages import get_language


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC for the duration of the block, restoring its previous state."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _show_progress() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates the pool
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's handler (if any) is not for workers
    if hasattr(signal, "pthread_sigmask"):  # forked with both blocked (see _stop_signals_held): now safe
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


def _deliver(signum: int, handler) -> None:
    """Act on `signum` as `handler` (what signal.signal returned) would have."""
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
    # SIG_IGN, or a handler not set from Python (None): dropped, as it would have been


@contextlib.contextmanager
def _stop_signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back while the pool starts; they take effect on leaving, with `pool` set.

    Masking the main thread is not enough: the kernel hands a process-directed signal to any thread
    not blocking it (torch's and tokenizers' threads), and Python then raises KeyboardInterrupt in the
    main thread wherever it is, also between a worker's fork and the pool registering it. Such an
    orphan waits forever on the task queue's lock once the registered workers are killed at exit, and
    keeps the caller's stdout open. So the Python handlers, which always run in the main thread, only
    record the signal here. The mask stays as well: workers are forked with both signals blocked and
    discard them once they ignore SIGINT (_init_worker), instead of raising inside their fork hooks.
    """
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous: dict[int, object] = {}
    closing = False

    def hold(signum, frame):
        if closing:  # still in place while the handlers are restored: act as the one it replaced
            _deliver(signum, previous[signum])
        else:
            held.append(signum)

    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        for s in _STOP_SIGNALS:
            previous[s] = signal.signal(s, hold)
        yield
    finally:
        closing = True
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for s, handler in previous.items():
            signal.signal(s, handler)
        for s in held:
            _deliver(s, previous[s])


def _build_chunk(args: tuple[Sequence[str], int | None, str]) -> list[StatementGraph]:
    codes, max_nodes, language = args
    with gc_paused():
        return [build_statement_graph(c, max_nodes, language) for c in codes]


def build_graphs(
    codes: Sequence[str],
    max_nodes: int | None = None,
    workers: int | None = None,
    chunksize: int = 64,
    min_parallel: int = 2000,
    progress: bool | None = None,
    start_method: str | None = None,
    language: str = "c",
) -> list[StatementGraph]:
    """Statement graphs for `codes`, in order; `workers=None` uses every CPU this process may use."""
    if chunksize < 1:
        raise ValueError(f"chunksize must be >= 1, got {chunksize}")
    workers = available_cpus() if workers is None else workers
    n = len(codes)
    show = _show_progress() if progress is None else progress
    get_language(language)  # an unknown name fails here, not in every worker
    chunks = [(codes[i:i + chunksize], max_nodes, language) for i in range(0, n, chunksize)]
    out: list[StatementGraph] = []
    with gc_paused(), tqdm(total=n, desc="graphs", unit="fn", disable=not show, leave=False) as bar:
        if workers <= 1 or n < max(min_parallel, 2):
            for chunk in chunks:
                out.extend(_build_chunk(chunk))
                bar.update(len(chunk[0]))
            return out
        if start_method is None:
            start_method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        ctx = multiprocessing.get_context(start_method)
        pool = None
        try:
            with _stop_signals_held():
                pool = ctx.Pool(processes=min(workers, len(chunks)), initializer=_init_worker)
            for graphs in pool.imap(_build_chunk, chunks):
                out.extend(graphs)
                bar.update(len(graphs))
        finally:
            if pool is not None:
                pool.terminate()  # as `with Pool()` does; also on Ctrl-C / SIGTERM
    return out
