"""Python's cyclic garbage collector, kept from stalling the probes while they sample.

A full collection walks every object the process holds and no thread runs meanwhile. After the imports
(the kubernetes client's models alone are tens of thousands of objects) one took 34–76 ms on the lab's
2-core machine: every probe's samples stop at once for that long. The collector starts one when enough
new objects have survived, which is when samples pile up fastest: right after an injection, while a
transition is being timed (`bench/detection_delay.py` saw etcd detection errors of 45 and 63 ms).

While probes sample, everything alive when they started is frozen (`gc.freeze`): out of the collector's
reach, still freed by reference counting as before. A full pass then walks only what the run made since.
A collection runs first, before any sample, so no earlier garbage is kept; the freeze ends when the last
group of probes stops (`gc.unfreeze`), so the next full pass outside a run sees everything again."""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_sampling = 0
"""Probe groups sampling now (a game day's runs may overlap with another caller's)."""


def hold() -> None:
    """A probe group starts sampling: collect now, then freeze what is alive."""
    global _sampling
    with _lock:
        if _sampling == 0:
            gc.collect()
            gc.freeze()
        _sampling += 1


def release() -> None:
    """A probe group stopped: the last one unfreezes."""
    global _sampling
    with _lock:
        _sampling = max(0, _sampling - 1)
        if _sampling == 0:
            gc.unfreeze()
