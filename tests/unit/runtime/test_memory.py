"""runtime.memory: freed memory goes back to the system, now and every few seconds."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from rental_operator.runtime import memory

# In a child process, so the measurement is of its heap alone: 100 MB of 1 KB blocks (from the C
# allocator: over pymalloc's 512-byte limit) with one block kept above them, so glibc cannot give the
# heap back from its top on its own; then every block but that one is freed.
_FRAGMENTED_HEAP = textwrap.dedent(
    """
    import re
    from rental_operator.runtime import memory

    def rss_mb():
        status = open("/proc/self/status").read()
        return int(re.search(r"VmRSS:\\s+(\\d+)", status).group(1)) / 1024

    blocks = [bytes(1000) + bytes([i % 256]) for i in range(100_000)]
    pinned = bytes(1000) + b"top"
    del blocks
    before = rss_mb()
    released = memory.MemoryTrimmer().trim_now()
    after = rss_mb()
    print(before, after, released)
    """
)


@pytest.mark.skipif(not memory.MemoryTrimmer().available, reason="the C library has no malloc_trim")
def test_a_trim_hands_freed_pages_back() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _FRAGMENTED_HEAP], capture_output=True, text=True, check=True, timeout=60
    )
    before, after, released = result.stdout.split()
    assert released == "True"
    assert float(before) - float(after) > 50, f"RSS {before} MB before the trim, {after} MB after"


@pytest.mark.skipif(not memory.MemoryTrimmer().available, reason="the C library has no malloc_trim")
def test_the_thread_trims_every_interval_until_stopped() -> None:
    trimmer = memory.MemoryTrimmer(interval=0.02)
    trimmer.start()
    trimmer.start()  # idempotent: still one thread
    deadline = time.monotonic() + 10
    while trimmer.trims < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    trimmer.stop()
    assert trimmer.trims >= 3
    stopped_at = trimmer.trims
    time.sleep(0.1)
    assert trimmer.trims == stopped_at


def test_the_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval must be positive, got 0"):
        memory.MemoryTrimmer(interval=0)


@pytest.mark.skipif(not memory.MemoryTrimmer().available, reason="the C library has no malloc_trim")
def test_as_a_context_manager_it_trims_only_within_the_block() -> None:
    with memory.MemoryTrimmer(interval=0.02) as trimmer:
        deadline = time.monotonic() + 10
        while trimmer.trims < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert trimmer.trims >= 2
    stopped_at = trimmer.trims
    time.sleep(0.1)
    assert trimmer.trims == stopped_at
