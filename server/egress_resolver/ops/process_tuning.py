"""Process tuning: what a server process sets once, before its first policy loads."""

from __future__ import annotations

import gc
import sys

_TUNED: list[bool] = []
SWITCH_INTERVAL_SECONDS = 0.001
"""How long the event loop waits at most for the GIL while the Lua thread
runs Python (validation, encoding): Python's default is 5 ms, which a hit
waiting behind a warm reload's batch would see whole."""


def tune_process() -> None:
    """Once per process, before the first policy loads:

    - collect, then move every object alive (modules, grpc, protobuf
      descriptors: ~77 000) out of the garbage collector's reach
      (gc.freeze). A full collection then looks at what came later only:
      ~50 ms less each time one runs on the event loop, which Python does on
      its own as objects pile up and a reload does to free the old policy's
      Lua runtime (a cycle). Nothing frozen is cyclic garbage then; freed by
      reference counting, a frozen object still goes;
    - hand the GIL over after SWITCH_INTERVAL_SECONDS (sys.setswitchinterval)."""
    if not _TUNED:
        gc.collect()
        gc.freeze()
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        _TUNED.append(True)
