"""What passes between the HTTP layer, the toolkit's handler and the app:
a Request in, a Response out.

The HTTP layer (nova.exporter.web.protocol) makes a Request of each request
head and writes the Response it is given; the handler
(nova.exporter.web.handler) decides who may ask and calls
``Request.let_in`` when a request passes; the app (nova.exporter.app)
decides what a path answers. Nothing here parses bytes, checks credentials
or knows metrics.
"""

import dataclasses
import typing


@dataclasses.dataclass
class Request:
    """The request line, the headers in their order (names lower-cased),
    and who sent it. ``on_let_in``, set by the HTTP layer, hears when the
    handler passes the request on (``let_in``).
    """

    method: str
    path: str
    query: str
    headers: list  # [(name bytes, value bytes)]
    peer: str = ''
    on_let_in: typing.Callable[[bool], None] | None = dataclasses.field(
        default=None, compare=False, repr=False)

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower case), as Go's
        Header.Get gives it.
        """
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def let_in(self, verified: bool) -> None:
        """The request passed the rate limit and, ``verified``, a password
        check: its connection is worth keeping while it is answered (and,
        verified, between requests too).
        """
        if self.on_let_in is not None:
            self.on_let_in(verified)


@dataclasses.dataclass
class Response:
    status: int
    body: bytes = b''
    headers: list = dataclasses.field(default_factory=list)


def text(status: int, body: bytes, headers=()) -> Response:
    return Response(status, body, [(b'content-type',
                                    b'text/plain; charset=utf-8'),
                                   *headers])
