"""Fault injection for the resume tests: `SRNET_FAULT=ACTION@POINT:N` kills (SIGKILL) or hangs the process the
N-th time it reaches POINT. A real `kill -9` at an exact place (mid-training, mid-evaluation, halfway through a
checkpoint write) is the only honest test of resuming; polling the file system cannot hit those places reliably."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

_hits: Counter[str] = Counter()


def fault_point(point: str) -> None:
    spec = os.environ.get("SRNET_FAULT")
    if not spec:
        return
    action, _, where = spec.partition("@")
    name, _, count = where.partition(":")
    if name != point:
        return
    _hits[point] += 1
    if _hits[point] != int(count or 1):
        return
    if action == "hang":  # the test kills us from outside
        marker = os.environ.get("SRNET_FAULT_MARKER")
        if marker:
            open(marker, "w").close()
        while True:
            time.sleep(1)
    os.kill(os.getpid(), signal.SIGKILL)
