"""A ZIP archive streamed as it is written: the first bytes leave before the last entry exists.

The standard library's ``zipfile`` writes to an output it cannot seek in (sizes and CRCs then
follow each entry in a data descriptor), so a download of certificates or an Excel workbook
(which is a ZIP) starts at once, holds only the entry being compressed in memory, and never
waits for the whole file before its first byte: no proxy read timeout, no temporary file.

    archive = ZipStream()
    archive.writestr("a.pdf", data)
    yield from archive.drain()
    with archive.open("big.xml") as entry:
        entry.write(b"...")
        yield from archive.drain()
    yield from archive.close()
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from typing import IO


class _Pipe:
    """What zipfile writes to: collects bytes until they are drained. No ``tell``/``seek``:
    zipfile then writes data descriptors instead of going back to fill in sizes."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes, /) -> int:
        self.parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        self.size = 0
        return data


class ZipStream:
    """A ZIP written to a pipe; ``drain()`` yields what has been written so far."""

    def __init__(self, compression: int = zipfile.ZIP_DEFLATED, min_chunk: int = 64 * 1024) -> None:
        self._pipe = _Pipe()
        self._zip = zipfile.ZipFile(self._pipe, "w", compression=compression)
        self.min_chunk = min_chunk

    def writestr(self, name: str, data: bytes | str) -> None:
        self._zip.writestr(name, data)

    def open(self, name: str) -> IO[bytes]:
        """A writable entry (use as a context manager). Entries stay below 4 GiB: zipfile
        refuses a larger one rather than writing a ZIP64 entry some spreadsheet programs reject."""
        return self._zip.open(name, "w")

    def drain(self, force: bool = False) -> Iterator[bytes]:
        """The bytes written since the last drain, once at least ``min_chunk`` are waiting
        (or all of them with ``force``)."""
        if self._pipe.size and (force or self._pipe.size >= self.min_chunk):
            yield self._pipe.take()

    def close(self) -> Iterator[bytes]:
        """Write the central directory and yield the rest."""
        self._zip.close()
        yield from self.drain(force=True)
