"""Socket reads into a buffer that a thread's connections share, handed on as data_received(bytes).

asyncio's selector transport reads with `recv(256 KiB)`: each read allocates 256 KiB, above
glibc's mmap threshold, so every read of a few hundred bytes (one routed message) costs an
mmap, a page fault, an mremap and a munmap, about 12 us of CPU (issue 14: seen with strace, one
of each per recvfrom under bench/ load). A `BufferedProtocol` is read into a buffer it gives
instead (`recv_into`): one buffer per thread serves every connection its event loop reads, one
socket at a time, each read copied out (as bytes of its own size) before the next. Per thread,
not per process: a process may run loops in several threads (the console probing a server
that runs in a thread of its own, in tests). uvloop supports the same protocol.
"""

from __future__ import annotations

import asyncio
import threading

__all__ = ["READ_SIZE", "SharedBufferReads"]

READ_SIZE = 64 * 1024  # bytes per read at most: four TLS records, well below the mmap threshold

_this_thread = threading.local()  # .buffer: made at its first read (a server never read holds none)


class SharedBufferReads(asyncio.BufferedProtocol):
    """Base of a protocol that takes its input in `data_received(data)`, as asyncio.Protocol."""

    __slots__ = ()

    def get_buffer(self, sizehint: int) -> memoryview:
        try:
            return _this_thread.buffer
        except AttributeError:
            _this_thread.buffer = memoryview(bytearray(READ_SIZE))
            return _this_thread.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(_this_thread.buffer[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        raise NotImplementedError
