"""Loaded by every Python process of a date-shifted run (.ci/test-date-shifted puts this directory first on
PYTHONPATH). libfaketime 0.9.10 fails Python's time.sleep with EINVAL when it leaves the monotonic clock alone
(Python sleeps with clock_nanosleep on an absolute monotonic deadline); faking the monotonic clock instead hangs
every timed thread wait. So the monotonic clock stays real and time.sleep waits in select(), which works."""

import os
import select
import time

if os.environ.get("FAKETIME"):

    def _sleep(seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            select.select([], [], [], left)

    time.sleep = _sleep
