"""The garbage collector's settings for the runtime's processes.

Why: CPython's default collects the youngest generation every 700 allocations of container
objects and the whole heap as it grows by a quarter. A master holding 10^5-10^6 task records,
versions and futures spends that time re-scanning objects that live until the end of the run:
measured on 100,000 no-op tasks, 4.8 s of a 63 s run (~37 us per task) went to collections;
with these settings, 1.1 s. Objects that exist once the runtime has started (modules,
functions, the runtime's own tables) are frozen out of collection altogether.

The thresholds also apply to the application's own code in the master process (the program
runs there): cyclic garbage waits for up to GEN0 container allocations before it is freed,
a few MB at most. SUPERSCALAR_GC_THRESHOLDS="700,10,10" restores CPython's defaults.
"""
from __future__ import annotations

import gc
import os

THRESHOLDS_ENV = "SUPERSCALAR_GC_THRESHOLDS"
DEFAULT_THRESHOLDS = (50_000, 20, 20)


def tune(freeze: bool = True) -> tuple:
    """Apply the thresholds (env or default); with `freeze`, move every object alive now to
    the permanent generation. Returns the thresholds applied."""
    text = os.environ.get(THRESHOLDS_ENV, "")
    try:
        thresholds = tuple(int(part) for part in text.split(",")) if text else DEFAULT_THRESHOLDS
        gc.set_threshold(*thresholds)
    except (ValueError, TypeError):
        raise ValueError(f"{THRESHOLDS_ENV}={text!r}: expected three integers, e.g. "
                         f"'700,10,10'") from None
    if freeze:
        gc.collect()
        gc.freeze()
    return thresholds
