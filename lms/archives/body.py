"""Reading a large request body (a tus PATCH chunk) in big pieces with as few copies as possible.

Through the generic WSGI stream, every byte of an upload is copied several times in Python
(gunicorn's socket buffer, its body buffer, werkzeug's limited stream) in pieces of at most
1 MiB. Under gunicorn, the body of a request with a Content-Length is read here straight from
the client socket into one reused buffer (``recv_into``), after whatever gunicorn had already
read ahead with the headers; gunicorn's own reader is kept informed of what was consumed.
Anything else (another server, a chunked body, tests) goes through the WSGI stream.

The pieces are memoryviews of the reused buffer: a consumer must use each before asking for
the next (the storage writes it; the type sniffing copies the few bytes it keeps).
"""

from __future__ import annotations

from collections.abc import Iterator

PIECE = 8 * 1024 * 1024


def body_pieces(environ: dict, stream, content_length: int | None, piece: int = PIECE) -> Iterator:
    """The request body in pieces of up to ``piece`` bytes. A client that goes away mid-body
    raises ``ConnectionError`` (an OSError), as a failed read of the WSGI stream does."""
    reader = _gunicorn_reader(environ, content_length)
    if reader is None:
        return _from_stream(stream, piece)
    return _from_socket(reader, piece)


def _gunicorn_reader(environ: dict, content_length: int | None):
    """gunicorn's LengthReader of this request if the fast path applies, else None."""
    body = environ.get("wsgi.input")
    reader = getattr(body, "reader", None)
    unreader = getattr(reader, "unreader", None)
    if (
        content_length is None
        or type(reader).__name__ != "LengthReader"
        or not hasattr(unreader, "sock")
        or not hasattr(unreader, "take_buffered")
        or getattr(reader, "length", None) != content_length
        or body.buf.tell() != 0  # nothing of the body read through the stream yet
    ):
        return None
    return reader


def _from_stream(stream, piece: int) -> Iterator[bytes]:
    while True:
        data = stream.read(piece)
        if not data:
            return
        yield data


def _from_socket(reader, piece: int) -> Iterator[memoryview]:
    unreader = reader.unreader
    sock = unreader.sock
    # Bytes gunicorn received together with the headers come first; anything beyond this
    # body (a pipelined request) goes back to it.
    ahead = unreader.take_buffered()
    if ahead:
        mine = ahead[: reader.length]
        if len(ahead) > len(mine):
            unreader.unread(ahead[len(mine):])
        reader.length -= len(mine)
        yield memoryview(mine)
    buffer = bytearray(min(piece, max(reader.length, 1)))
    view = memoryview(buffer)
    while reader.length > 0:
        want = min(len(buffer), reader.length)
        filled = 0
        while filled < want:
            got = sock.recv_into(view[filled:want])
            if not got:
                # What arrived is kept (the upload resumes after it), then the drop is reported.
                reader.length -= filled
                if filled:
                    yield view[:filled]
                raise ConnectionResetError("the client closed the connection before the end of the body")
            filled += got
        reader.length -= filled
        yield view[:filled]
