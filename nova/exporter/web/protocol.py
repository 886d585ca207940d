"""One client of the exporter's HTTP/1.1 server, TLS or not, as bytes in
and bytes and events out (sans-IO, as h11 is): no socket, no event loop,
no clock.

``ServerConnection`` is driven by a transport (nova.exporter.web.connection
on asyncio; the property-based tests on a fake one): it is given what the
client sent (``receive_data``; ``b''`` for its end), asked what comes next
(``next_event``: a Request to answer, or NEED_DATA, HANDSHAKE, BUSY,
CLOSED), given each answer (``send_response``) and asked for the bytes the
client is owed (``data_to_send``). Its bounds hold by construction, however
the client's bytes are cut:

- **Input held**: at most RAW_WINDOW bytes received and not yet parsed
  (``room`` says how many more it takes; the transport reads no more). A
  TLS record fits in it whole (2**14 bytes of plaintext and at most 2,048
  of expansion), so a full window always holds one to decrypt. Bytes go on
  to h11 FEED at a time, and only when h11 needs them: h11 holds at most a
  head of MAX_HEAD bytes and one FEED. Plain and TLS take the same path.
- **Output held**: an answer's body is a reference (the app shares one
  encoded body between the scrapes of a poll); its bytes are framed, and
  encrypted, only as the transport asks for them, at most ``limit`` at a
  time.
- **Order**: every complete request received is answered, one at a time,
  in order, without waiting for more bytes; the next request is parsed only
  once the last answer was taken.
- **Ends**: the client's FIN, or its TLS close_notify, ends the connection
  once the complete requests before it are answered; a request it cuts
  short is not answered. A head h11 refuses gets h11's status (400, 431), an
  HTTP/2 preface 505, plain HTTP on the TLS port Go's 400; then it closes.
  A request with a body is answered without reading the body, then closed.

Nothing here knows credentials, metrics, time or libvirt.
"""

import collections
import enum
import http
import ssl
import urllib.parse

import h11

from nova.exporter.web import messages

# A request head, at most (h11 answers 431 beyond): a scrape's is under
# 1 KiB; 8 KiB is what nginx gives a header line by default.
MAX_HEAD = 8 * 1024
# Bytes handed to h11 at a time, when it needs them.
FEED = 4 * 1024
# Bytes received and not yet parsed, at most: a TLS record whole (5 bytes
# of header, 2**14 of plaintext, 2,048 of expansion at most) and a little.
RAW_WINDOW = 20 * 1024
# What Go's net/http answers to plain HTTP on a TLS port.
PLAIN_HTTP_REPLY = (b'HTTP/1.0 400 Bad Request\r\n\r\n'
                    b'Client sent an HTTP request to an HTTPS server.\n')
TLS_HANDSHAKE = 0x16  # the first byte of a TLS record carrying a handshake


class Event(enum.Enum):
    """What ``next_event`` gives besides a Request to answer."""

    #: nothing to do until more bytes arrive (``room`` of them at most)
    NEED_DATA = 'need data'
    #: TLS handshake work is waiting: call ``handshake()`` when it may run
    HANDSHAKE = 'handshake'
    #: an answer is awaited, or not yet taken by ``data_to_send``
    BUSY = 'busy'
    #: the connection ended: send what ``data_to_send`` still gives, close
    CLOSED = 'closed'


NEED_DATA, HANDSHAKE, BUSY, CLOSED = (Event.NEED_DATA, Event.HANDSHAKE,
                                      Event.BUSY, Event.CLOSED)


def reply(status: int, body: bytes) -> bytes:
    """A whole response that closes the connection, for a request h11
    could not parse (it can frame no answer to it).
    """
    return (f'HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n'
            'Content-Type: text/plain; charset=utf-8\r\n'
            f'Content-Length: {len(body)}\r\nConnection: close\r\n\r\n'
            ).encode() + body


def _reason(error: Exception) -> str:
    return str(getattr(error, 'reason', None) or error)


class ServerConnection:
    """One client, from its first byte to its end. ``tls``: the
    nova.exporter.web.tls.ServerTLS it is served with, None for plain
    HTTP; ``peer``: its address, handed on with each Request.
    """

    def __init__(self, tls=None, peer: str = ''):
        self.tls = tls
        self.peer = peer
        self._http = h11.Connection(h11.SERVER,
                                    max_incomplete_event_size=MAX_HEAD)
        self._raw = bytearray()  # plain input not yet parsed
        self._ssl = self._incoming = self._outgoing = None
        self.handshaken = tls is None
        # input arrived since the handshake last ran
        self._handshake_input = False
        self._eof = False  # the client's FIN or close_notify
        self._eof_fed = False  # ... and h11 was told
        # the plaintext owed to the client: bytes and memoryviews
        self._out: collections.deque = collections.deque()
        self._out_raw = False  # sent as it is, even on the TLS port
        self._close_after = False  # close once the output was taken
        #: the Request being answered
        self.answering: messages.Request | None = None
        self._keep = True
        #: requests answered
        self.answered = 0
        self.closed = False
        #: (kind, why) of an end worth a log line, else None
        self.refused: tuple[str, str] | None = None

    # -- what the transport asks ----------------------------------------------

    @property
    def room(self) -> int:
        """How many more bytes ``receive_data`` takes now (0: read no
        more until ``next_event`` was asked again).
        """
        if self.closed or self._eof or self._close_after:
            return 0
        return RAW_WINDOW - self.raw_held

    @property
    def raw_held(self) -> int:
        """Bytes received and not yet decrypted or parsed."""
        if self._incoming is not None:
            return self._incoming.pending
        return len(self._raw)

    @property
    def busy(self) -> bool:
        """A request is being answered, or its answer not all taken."""
        return self.answering is not None or bool(self._out)

    @property
    def has_output(self) -> bool:
        return bool(self._out) or bool(
            self._outgoing is not None and self._outgoing.pending)

    # -- the client's bytes ---------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """What the client sent (at most ``room`` bytes); ``b''``: the
        client's end (FIN).
        """
        if self.closed:
            return
        if not data:
            self._eof = True
            if self._incoming is not None:
                self._incoming.write_eof()
            return
        if len(data) > self.room:
            raise ValueError(f'{len(data)} bytes received with room for '
                             f'{self.room}: read at most room bytes')
        if self.tls is None:
            self._raw += data
            return
        if self._ssl is None:
            if data[0] != TLS_HANDSHAKE:
                self.refused = ('plain', 'A client sent plain HTTP to the '
                                         'HTTPS port: answered 400.')
                self._out.append(PLAIN_HTTP_REPLY)
                self._out_raw = self._close_after = True
                return
            self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            self._ssl = self.tls.context.wrap_bio(
                self._incoming, self._outgoing, server_side=True)
        self._incoming.write(data)
        if not self.handshaken:
            self._handshake_input = True

    def handshake(self) -> None:
        """Take the TLS handshake as far as the bytes received allow."""
        self._handshake_input = False
        if self.closed or self.handshaken or self._ssl is None:
            return
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            return
        except (ssl.SSLError, OSError) as e:
            self._refuse(f'a TLS handshake failed: {_reason(e)}')
            return
        self.handshaken = True
        if not self.tls.peer_allowed(self._ssl.getpeercert()):
            self._refuse('a client certificate has no SAN that '
                         'client_allowed_sans lists')

    def _refuse(self, why: str) -> None:
        self.refused = ('refused', f'Refused a client: {why}.')
        self.closed = True

    # -- what comes next ------------------------------------------------------

    def next_event(self):
        """A Request to answer (``send_response``), or an Event."""
        if self.closed:
            return CLOSED
        if self.busy:
            return BUSY
        if self._close_after:
            self.closed = True
            return CLOSED
        if not self.handshaken:
            if self._eof:  # a client that left during its handshake
                self.closed = True
                return CLOSED
            if self._handshake_input:
                return HANDSHAKE
            return NEED_DATA
        while True:
            try:
                event = self._http.next_event()
            except h11.RemoteProtocolError as e:
                if self._eof_fed:  # a request cut short by the end
                    self.closed = True
                    return CLOSED
                return self._bad_request(e.error_status_hint)
            if event is h11.NEED_DATA:
                data = self._plaintext()
                if data:
                    self._http.receive_data(data)
                    continue
                if self.closed:
                    return CLOSED
                if self._eof and not self._eof_fed:
                    self._eof_fed = True
                    self._http.receive_data(b'')
                    continue
                if not self.room:
                    # a full window of nothing decryptable
                    self._refuse('a TLS record larger than TLS allows')
                    return CLOSED
                return NEED_DATA
            if isinstance(event, h11.Request):
                return self._start(event)
            # ConnectionClosed, or nothing more this connection can take
            self.closed = True
            return CLOSED

    def _plaintext(self) -> bytes:
        """At most FEED bytes of what the client sent, decrypted; b'' for
        none yet (or its end, then noted).
        """
        if self._ssl is None:
            data = bytes(self._raw[:FEED])
            del self._raw[:FEED]
            return data
        try:
            data = self._ssl.read(FEED)
        except ssl.SSLWantReadError:
            return b''
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            self._eof = True  # close_notify, or a FIN without it
            return b''
        except (ssl.SSLError, OSError) as e:
            # a renegotiation refused, a record that fails its check...
            self._refuse(f'a TLS connection failed: {_reason(e)}')
            return b''
        if not data:  # close_notify
            self._eof = True
        return data

    def _bad_request(self, status: int):
        self._out.append(reply(status, b'Bad Request.\n'))
        self._close_after = True
        return BUSY

    def _start(self, event: h11.Request):
        if event.http_version not in (b'1.0', b'1.1'):
            # An HTTP/2 preface (PRI * HTTP/2.0): HTTP/1.1 only here.
            self._out.append(reply(505, b'HTTP Version Not Supported: '
                                        b'HTTP/1.1 only.\n'))
            self._close_after = True
            return BUSY
        headers = list(event.headers)
        # A body is never read: the connection closes after the answer.
        self._keep = not any(
            name == b'transfer-encoding' or (
                name == b'content-length' and
                value.strip() not in (b'0', b''))
            for name, value in headers)
        target = event.target.decode('latin-1')
        if target.startswith(('http://', 'https://')):
            parts = urllib.parse.urlsplit(target)
            path, query = parts.path or '/', parts.query
        else:
            path, _, query = target.partition('?')
        self.answering = messages.Request(
            event.method.decode('latin-1'), path, query, headers, self.peer)
        return self.answering

    # -- the answers ----------------------------------------------------------

    def send_response(self, response: messages.Response,
                      headers: tuple = ()) -> None:
        """The answer to the Request ``next_event`` gave, with ``headers``
        before the response's own (the Date).
        """
        request = self.answering
        if request is None:
            raise RuntimeError('send_response() without a request to answer')
        self.answering = None
        if self.closed:
            return
        body = response.body
        fields = [*headers, *response.headers,
                  (b'content-length', str(len(body)).encode())]
        if not self._keep:
            fields.append((b'connection', b'close'))
        try:
            pieces = [self._http.send(h11.Response(
                status_code=response.status, headers=fields,
                reason=http.HTTPStatus(response.status).phrase.encode()))]
            if request.method != 'HEAD' and body:
                # with a Content-Length, h11 passes the body through: a
                # view of the shared body, no copy
                pieces += self._http.send_with_data_passthrough(
                    h11.Data(data=memoryview(body)))
            pieces.append(self._http.send(h11.EndOfMessage()))
        except h11.LocalProtocolError as e:
            self._refuse(f'an answer could not be framed: {e}')
            return
        self._out.extend(p for p in pieces if len(p))
        self.answered += 1
        if not self._keep or self._http.our_state is not h11.DONE or \
                not self._request_ended():
            self._close_after = True
            return
        self._http.start_next_cycle()

    def _request_ended(self) -> bool:
        """Take the end of the request answered from what h11 holds (a
        request without a body has it already): whether the next one can
        be parsed.
        """
        try:
            while self._http.their_state is h11.SEND_BODY:
                event = self._http.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    return False
        except h11.RemoteProtocolError:
            return False
        return self._http.their_state is h11.DONE

    def data_to_send(self, limit: int) -> bytes:
        """At most about ``limit`` bytes owed to the client (TLS adds its
        records' overhead), b'' for none.
        """
        taken, size = [], 0
        while self._out and size < limit:
            piece = self._out[0]
            n = min(len(piece), limit - size)
            if n == len(piece):
                self._out.popleft()
                taken.append(piece)
            else:
                view = memoryview(piece)
                taken.append(view[:n])
                self._out[0] = view[n:]
            size += n
        data = b''.join(taken)
        if self._ssl is None or self._out_raw:
            return data
        if data and not self.closed:
            try:
                self._ssl.write(data)
            except (ssl.SSLError, OSError) as e:
                self._refuse(f'a TLS connection failed: {_reason(e)}')
        return self._outgoing.read()

    # -- for tests ------------------------------------------------------------

    def held_input(self) -> int:
        """Bytes of the client's held: received and not decrypted or not
        parsed (raw, or in h11's buffer). Copies h11's buffer: for tests,
        not for each read.
        """
        return self.raw_held + len(self._http.trailing_data[0])

    def held_output(self) -> int:
        """Bytes of answers made and not yet taken by ``data_to_send``
        (the body of an answer is a reference to the app's, not counted).
        """
        return 0 if self._outgoing is None else self._outgoing.pending
