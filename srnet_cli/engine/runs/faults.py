"""Fault injection for the resume and disk tests: `SRNET_FAULT=ACTION@POINT:N` kills (SIGKILL), hangs, or fails a
write as a full disk or a read-only file system would (`enospc`, `erofs`: that OSError) the N-th time the process
reaches POINT; every atomic write is a point named `write-<file name>`. A real `kill -9` at an exact place
(mid-training, mid-evaluation, halfway through a checkpoint write) is the only honest test of resuming; polling the
file system cannot hit those places reliably."""

from __future__ import annotations

import errno
import os
import signal
import time
from collections import Counter

_hits: Counter[str] = Counter()
OS_ERRORS = {"enospc": errno.ENOSPC, "erofs": errno.EROFS}  # a full disk, a read-only file system


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
    if action in OS_ERRORS:
        raise OSError(OS_ERRORS[action], os.strerror(OS_ERRORS[action]))
    if action == "hang":  # the test kills us from outside
        marker = os.environ.get("SRNET_FAULT_MARKER")
        if marker:
            open(marker, "w").close()
        while True:
            time.sleep(1)
    os.kill(os.getpid(), signal.SIGKILL)
