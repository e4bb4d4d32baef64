"""Crash points for testing crash safety with real worker processes.

A service calls ``crash_point("settlement.posted")`` where a crash would hurt most (work done, not yet
committed). Nothing happens unless the environment names that point:

- ``GREENLEDGER_PAUSE_AT=<name>``: write ``<name>`` to the file ``GREENLEDGER_PAUSE_FILE`` and sleep, so
  a test can SIGKILL the worker while it is inside the transaction;
- ``GREENLEDGER_CRASH_AT=<name>``: the process kills itself with SIGKILL on the spot.

Production never sets these variables.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def crash_point(name: str) -> None:
    if os.environ.get("GREENLEDGER_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("GREENLEDGER_PAUSE_AT") == name:
        marker = os.environ.get("GREENLEDGER_PAUSE_FILE")
        if marker:
            Path(marker).write_text(f"{name} {os.getpid()}\n")
        time.sleep(float(os.environ.get("GREENLEDGER_PAUSE_SECONDS", "600")))
