"""HTTP/1.1 keep-alive for the emulator's server, as AWS's endpoints keep connections open.

werkzeug's development server (moto's server mode) answers every request with `Connection: close`,
because Python's http.server does not drain an unread request body before reading the next request
line. So every API call paid a TCP connection and the server a thread for it, in the tool as much as
in the emulator, which AWS's endpoints do not cost: they keep a connection open for the next
request.

`KeepAliveRequestHandler` (moto's request handler, whose S3 metadata header fix it keeps) leaves a
connection open when the request can be delimited: HTTP/1.1, no `Connection: close`, and a body
given by `Content-Length` (or none). The body is read through a stream that stops at its length,
and whatever the application left unread is drained after the response, so the next request line
starts where it should. A request with a chunked body, an HTTP/1.0 one, or one whose body cannot
be drained still closes its connection, as before. An idle connection is closed after
`IDLE_SECONDS`, so a client that went away does not hold a server thread.

werkzeug also reads whatever the socket holds after a response ("If we supported keep-alive
connections, this naive approach would break by reading the next request line"), through
`werkzeug.serving.selectors`: for a connection kept open, that look finds nothing to read (the
body was bounded and is drained here instead).
"""

from __future__ import annotations

import io
import selectors
import threading
from typing import Any

from moto.moto_server.werkzeug_app import MotoRequestHandler

#: Seconds an open connection may wait for its next request (AWS closes idle ones after tens of
#: seconds too; the SDK's pool drops its own idle connections sooner).
IDLE_SECONDS = 60
#: Bytes read at a time when draining an unread body.
DRAIN_CHUNK = 64 * 1024


_request = threading.local()


class _QuietSelector:
    """werkzeug's after-response read, seeing nothing while this thread keeps its connection."""

    def __init__(self) -> None:
        self.inner = selectors.DefaultSelector()

    def register(self, fileobj: Any, events: int, data: Any = None) -> Any:
        return self.inner.register(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[Any]:
        if getattr(_request, "keeping", False):
            return []
        return self.inner.select(timeout)

    def close(self) -> None:
        self.inner.close()


class _WerkzeugSelectors:
    """What `werkzeug.serving` uses of the `selectors` module."""

    EVENT_READ = selectors.EVENT_READ
    DefaultSelector = _QuietSelector


class BoundedBody(io.RawIOBase):
    """The request body: at most `length` bytes of the connection's stream, never the next request."""

    def __init__(self, stream: Any, length: int) -> None:
        self.stream = stream
        self.remaining = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.remaining <= 0:
            return 0
        wanted = min(len(buffer), self.remaining)
        data = self.stream.read(wanted)
        if not data:
            raise ConnectionError("the client closed the connection inside a request body")
        buffer[: len(data)] = data
        self.remaining -= len(data)
        return len(data)

    def drain(self) -> None:
        while self.remaining > 0:
            data = self.stream.read(min(self.remaining, DRAIN_CHUNK))
            if not data:
                raise ConnectionError("the client closed the connection inside a request body")
            self.remaining -= len(data)


def content_length(headers: Any) -> int | None:
    """The request's body length: 0 without a body, None when it cannot be delimited by length."""
    if headers.get("Transfer-Encoding"):
        return None
    value = headers.get("Content-Length")
    if value is None:
        return 0
    value = value.strip()
    if not value.isdigit():
        return None
    return int(value)


class KeepAliveRequestHandler(MotoRequestHandler):
    timeout = IDLE_SECONDS
    # A response goes out in two writes (status and headers, then the body). With Nagle's
    # algorithm on a kept connection the body waits for the client to acknowledge the headers,
    # which a client delays by up to 40 ms (delayed ACK): every call would pay it.
    disable_nagle_algorithm = True

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        self.body: BoundedBody | None = None
        length = content_length(self.headers)
        if length is not None and not self.close_connection:
            self.body = BoundedBody(self.rfile, length)
            environ["wsgi.input"] = io.BufferedReader(self.body, DRAIN_CHUNK)
        return environ

    def send_header(self, keyword: str, value: str) -> None:
        # werkzeug announces `Connection: close` on every response; http.server then closes.
        if (
            keyword.lower() == "connection"
            and value.lower() == "close"
            and getattr(self, "body", None) is not None
            and not self.close_connection
        ):
            return
        super().send_header(keyword, value)

    def run_wsgi(self) -> None:
        self.body = None
        _request.keeping = content_length(self.headers) is not None and not self.close_connection
        try:
            super().run_wsgi()
        finally:
            _request.keeping = False
        if self.close_connection:
            return
        if self.body is None:
            self.close_connection = True
            return
        try:
            # The BufferedReader may hold bytes read ahead, but only from this body: it reads
            # through `BoundedBody`, which never passes the body's end.
            self.body.drain()
        except (ConnectionError, OSError):
            self.close_connection = True


def install() -> None:
    """Makes moto's server use the keep-alive handler (call before `moto.server.main`)."""
    import moto.server
    import werkzeug.serving

    moto.server.MotoRequestHandler = KeepAliveRequestHandler
    werkzeug.serving.selectors = _WerkzeugSelectors  # type: ignore[assignment]
