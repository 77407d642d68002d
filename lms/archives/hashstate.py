"""SHA-256 whose running state can be saved between requests (resumable uploads).

A tus upload arrives as many PATCH requests, possibly served by different worker processes.
Hashing each body as it is written avoids reading the whole file back at the end (2 GB read
and hashed again inside the last request), but ``hashlib`` objects cannot be saved. OpenSSL's
``SHA256_CTX`` can: it is a plain struct (eight state words, the length, the pending block),
so its bytes are stored with the upload (``UploadSession.metadata_json``) after each PATCH and
loaded at the next one.

The saved state is tied to the library that wrote it (its version number and the struct size
are part of it); whenever it is missing, does not match, or does not sit exactly at the
received offset, the caller falls back to hashing the stored bytes in one pass.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import struct

CTX_SIZE = 112  # sizeof(SHA256_CTX): 8 x 4 (h) + 4 + 4 (Nl, Nh) + 16 x 4 (data) + 4 + 4 (num, md_len)
_HEADER = struct.Struct("<QQ")  # OpenSSL version number, bytes hashed so far


def _load():
    names = ["libcrypto.so.3", ctypes.util.find_library("crypto")]
    for name in names:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            init, update, final = lib.SHA256_Init, lib.SHA256_Update, lib.SHA256_Final
            version = lib.OpenSSL_version_num
        except (OSError, AttributeError):
            continue
        init.argtypes, init.restype = [ctypes.c_void_p], ctypes.c_int
        update.argtypes, update.restype = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t], ctypes.c_int
        final.argtypes, final.restype = [ctypes.c_char_p, ctypes.c_void_p], ctypes.c_int
        version.argtypes, version.restype = [], ctypes.c_ulong
        return lib
    return None


_lib = _load()


def available() -> bool:
    return _lib is not None


class ResumableSha256:
    """``update`` like hashlib; ``dump`` / ``load`` to carry the state to the next request."""

    def __init__(self, state: bytes | None = None, length: int = 0):
        if _lib is None:
            raise RuntimeError("libcrypto is not available")
        self._ctx = ctypes.create_string_buffer(CTX_SIZE)
        self.length = length
        if state is None:
            if _lib.SHA256_Init(self._ctx) != 1:
                raise RuntimeError("SHA256_Init failed")
        else:
            ctypes.memmove(self._ctx, state, CTX_SIZE)

    def update(self, data) -> None:
        """Hash ``data`` (bytes, bytearray or a memoryview of one) without copying it (the GIL is
        released while OpenSSL works)."""
        if isinstance(data, bytes):
            size = len(data)
            if size and _lib.SHA256_Update(self._ctx, data, size) != 1:
                raise RuntimeError("SHA256_Update failed")
            self.length += size
            return
        view = memoryview(data).cast("B")
        size = view.nbytes
        if not size:
            return
        pointer = bytes(view) if view.readonly else (ctypes.c_char * size).from_buffer(view)
        if _lib.SHA256_Update(self._ctx, pointer, size) != 1:
            raise RuntimeError("SHA256_Update failed")
        self.length += size

    def hexdigest(self) -> str:
        """The digest of everything so far (the running state is left as it was)."""
        copy = ctypes.create_string_buffer(self._ctx.raw, CTX_SIZE)
        out = ctypes.create_string_buffer(32)
        if _lib.SHA256_Final(out, copy) != 1:
            raise RuntimeError("SHA256_Final failed")
        return out.raw.hex()

    def dump(self) -> str:
        """The state as text (for a JSON column)."""
        raw = _HEADER.pack(_lib.OpenSSL_version_num(), self.length) + self._ctx.raw
        return base64.b64encode(raw).decode("ascii")

    @classmethod
    def load(cls, text: str | None, length: int) -> ResumableSha256 | None:
        """The hasher saved by ``dump`` if it covers exactly ``length`` bytes and was written by
        this library; None otherwise (the caller then hashes the stored bytes instead)."""
        if _lib is None or not text:
            return None
        try:
            raw = base64.b64decode(text, validate=True)
        except (ValueError, TypeError):
            return None
        if len(raw) != _HEADER.size + CTX_SIZE:
            return None
        version, hashed = _HEADER.unpack_from(raw)
        if version != _lib.OpenSSL_version_num() or hashed != length:
            return None
        return cls(raw[_HEADER.size:], hashed)
