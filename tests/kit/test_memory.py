"""Freed heap memory back to the system: effective on glibc (this machine and the Docker image), harmless
elsewhere."""

from __future__ import annotations

import platform

import pytest

from imail.kit import memory
from imail.workers.maintenance import release_memory
from imail.workers.registry import WORKERS


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim and mallopt are glibc's")
def test_glibc_takes_the_arena_limit_and_trims():
    assert memory.limit_arenas(2) is True
    garbage = [bytearray(256) for _ in range(200_000)]  # ~60 MB in small blocks, then freed
    del garbage
    assert memory.release_free_memory() is True  # something was handed back


def test_the_trim_runs_as_a_registered_worker():
    assert any(spec.run is release_memory for spec in WORKERS)
