"""Thread counts for small dense kernels: on a busy machine two torch threads contend for the cores.

Measured here (2 cores): with every core taken, a [8, 512, 512] eigh is 1.4x (one other busy process)
to 10x (oversubscribed) slower on two threads than on one; the prune preview's memory-bound sums at
10k images take 90-100 ms on two threads under load 3 and 35-40 ms on one.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

import torch


@contextmanager
def one_thread():
    """On a busy machine (1-minute load >= cores - 0.5), run the block on one torch thread; on a quiet
    one the threads stay (an eigh is 1.5x faster on two). The previous thread count is restored."""
    n = torch.get_num_threads()
    try:
        busy = os.getloadavg()[0] >= (os.cpu_count() or 1) - 0.5
    except OSError:
        busy = False
    if n == 1 or not busy:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
