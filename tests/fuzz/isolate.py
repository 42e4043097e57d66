"""Run a function in a forked child with an address-space limit: a decoder that aborts,
crashes or tries to allocate gigabytes fails a test instead of killing the test process
(or the machine)."""

from __future__ import annotations

import multiprocessing as mp
import os
import resource


def run_isolated(fn, *args, headroom: int = 2 * 1024**3, timeout: float = 120):
    """fn(*args) in a forked child that may grow its address space by ``headroom`` only.

    Returns ("ok", repr(result)), (exception type name, message) when fn raised,
    ("died", "exit code N") when the child crashed or aborted, or ("timeout", ...).
    """
    ctx = mp.get_context("fork")
    queue = ctx.SimpleQueue()

    def target() -> None:
        with open("/proc/self/statm") as fh:
            size = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (size + headroom, size + headroom))
        try:
            queue.put(("ok", repr(fn(*args))))
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            queue.put((type(exc).__name__, str(exc)))

    child = ctx.Process(target=target)
    child.start()
    child.join(timeout)
    if child.is_alive():
        child.kill()
        child.join()
        return "timeout", f"did not finish within {timeout} s"
    if queue.empty():
        return "died", f"exit code {child.exitcode}"
    return queue.get()
