import gc
import multiprocessing
import os
import pathlib
import pickle
import signal
import subprocess
import sys

import pytest

from streamguard.graphs.builder import build_statement_graph
from streamguard.graphs.parallel import build_graphs, gc_paused

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_parallel_equals_sequential_in_input_order(real_functions):
    codes = real_functions[:120] + ["", "x = ;", "int f(){ return 1; }"]
    expected = [build_statement_graph(c, 20) for c in codes]
    seq = build_graphs(codes, 20, workers=1)
    par = build_graphs(codes, 20, workers=2, chunksize=7, min_parallel=0)
    assert seq == expected and par == expected
    assert [g.n_nodes_before_cap for g in par] == [g.n_nodes_before_cap for g in expected]


def test_forkserver_start_method(real_functions):
    codes = real_functions[:10]
    out = build_graphs(codes, None, workers=2, chunksize=3, min_parallel=0, start_method="forkserver")
    assert out == [build_statement_graph(c) for c in codes]


def test_small_batches_and_empty_input():
    assert build_graphs([], 10, workers=2, min_parallel=0) == []
    out = build_graphs(["void f(char *s){ system(s); }"], None, workers=4)
    assert len(out) == 1 and out[0].edges_of("taint") == [(0, 1)]


def test_graph_pickle_round_trip(real_functions):
    for code in real_functions[:20] + [""]:
        g = build_statement_graph(code)
        assert pickle.loads(pickle.dumps(g)) == g


def test_gc_paused_restores_state():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


# A Ctrl-C right after the second worker is forked, before the pool has registered it. The process has
# another thread, as torch's and tokenizers' thread pools give every stage: the kernel hands a
# process-directed signal to any thread not blocking it, so blocking it in the main thread alone does not
# hold it back. At exit multiprocessing kills the registered worker, which may hold the task queue's lock;
# the orphan then waits on that lock forever and keeps the stage's stdout open (how a caller's
# `communicate()` hung). The script below must exit and close its pipe.
_INTERRUPT_MID_POOL_START = """
import os, signal, threading, time
import multiprocessing.popen_fork as popen_fork
from streamguard.graphs.parallel import build_graphs

threading.Thread(target=threading.Event().wait, daemon=True).start()
launch, forks = popen_fork.Popen._launch, []
def launch_then_interrupt(self, process_obj):
    launch(self, process_obj)  # only the parent returns from here
    forks.append(self.pid)
    if len(forks) == 1:
        time.sleep(0.3)  # the first worker takes the task queue's lock and waits there for a task
    if len(forks) == 2:
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 1  # a slow parent: the signal arrives before the pool registers the worker
        while time.monotonic() < deadline:
            pass
popen_fork.Popen._launch = launch_then_interrupt
try:
    build_graphs(["int f(void) { return 1; }"] * 40, None, workers=2, chunksize=1, min_parallel=0, start_method="fork")
except KeyboardInterrupt as exc:
    held = exc  # its traceback keeps the half-made pool alive until exit, as a reference cycle can
    print("interrupted")
"""


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_interrupt_while_the_pool_starts_leaves_no_worker_behind():
    proc = subprocess.Popen([sys.executable, "-c", _INTERRUPT_MID_POOL_START], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("a pool worker outlived the interrupted process and held its stdout open")
    assert proc.returncode == 0, err
    assert out.split() == ["interrupted"]
