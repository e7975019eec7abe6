"""Socket reads into one shared buffer, handed on as `data_received(bytes)`.

asyncio's selector transport reads with `recv(256 KiB)`: each read allocates 256 KiB, above
glibc's mmap threshold, so every read of a few hundred bytes (one routed message) costs an
mmap, a page fault, an mremap and a munmap, about 12 us of CPU (issue 14: seen with strace, one
of each per recvfrom under bench/ load). A `BufferedProtocol` is read into a buffer it gives
instead (`recv_into`): one buffer serves every connection, since the event loop's thread reads
one socket at a time and each read is copied out (as bytes of its own size) before the next.
uvloop supports the same protocol.
"""

from __future__ import annotations

import asyncio

__all__ = ["READ_SIZE", "SharedBufferReads"]

READ_SIZE = 64 * 1024  # bytes per read at most: four TLS records, well below the mmap threshold

_buffer: memoryview | None = None  # made at the first read: a server that never reads holds none


class SharedBufferReads(asyncio.BufferedProtocol):
    """Base of a protocol that takes its input in `data_received(data)`, as asyncio.Protocol."""

    __slots__ = ()

    def get_buffer(self, sizehint: int) -> memoryview:
        global _buffer
        if _buffer is None:
            _buffer = memoryview(bytearray(READ_SIZE))
        return _buffer

    def buffer_updated(self, nbytes: int) -> None:
        assert _buffer is not None
        self.data_received(_buffer[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        raise NotImplementedError
