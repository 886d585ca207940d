"""One client of the exporter's HTTP server: TLS on memory buffers, then
HTTP/1.1 through h11, one request at a time.

``Connection`` is the asyncio protocol nova.exporter.web.server makes for
each accepted socket. It holds what a connection may hold, and no more
(see the server's module docstring for the bounds): the bytes of a
handshake not yet done up to HANDSHAKE_INPUT, a request head up to
MAX_HEAD, a response written CHUNK at a time as the client takes it; a
request body is never read. It asks its server to admit it, to queue its
handshake work, and to trust it once a request was let in; it hands each
request to the server's handler. Nothing here knows credentials, metrics
or libvirt.
"""

import asyncio
import http
import logging
import socket
import ssl
import urllib.parse

import h11

from nova.exporter.web import handler as web_handler

LOG = logging.getLogger(__name__)

READ_SIZE = 16 * 1024
MAX_HEAD = 16 * 1024
HANDSHAKE_INPUT = 32 * 1024
CHUNK = 64 * 1024
WRITE_HIGH = 64 * 1024
# What Go's net/http answers to plain HTTP on a TLS port.
PLAIN_HTTP_REPLY = (b'HTTP/1.0 400 Bad Request\r\n\r\n'
                    b'Client sent an HTTP request to an HTTPS server.\n')
TLS_HANDSHAKE = 0x16  # the first byte of a TLS record carrying a handshake


def reply(status: int, body: bytes) -> bytes:
    """A whole response that closes the connection, written by hand for
    requests h11 could not parse.
    """
    return (f'HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n'
            'Content-Type: text/plain; charset=utf-8\r\n'
            f'Content-Length: {len(body)}\r\nConnection: close\r\n\r\n'
            ).encode() + body


class Connection(asyncio.BufferedProtocol):
    """One client: TLS on memory buffers (when the server has TLS), then
    HTTP/1.1 through h11, one request at a time.
    """

    def __init__(self, server):
        self.server = server
        self.transport = None
        self.address = ''
        self.tls = None
        self.ssl = None
        self.incoming = self.outgoing = None
        self.handshaken = False
        self.http = h11.Connection(h11.SERVER,
                                   max_incomplete_event_size=MAX_HEAD)
        #: a request is being answered
        self.busy = False
        self.closed = False
        #: waiting in the server's handshake queue
        self.queued = False
        self._reading = True
        self._writable = None  # a future while the client takes nothing
        self._timer = None
        self._task = None

    # -- events from asyncio -------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        peer = transport.get_extra_info('peername')
        self.address = peer[0] if isinstance(peer, tuple) else str(peer)
        if self.server.stopping or not self.server.admit(self):
            self.closed = True
            transport.abort()
            return
        transport.set_write_buffer_limits(high=WRITE_HIGH,
                                          low=WRITE_HIGH // 4)
        sock = transport.get_extra_info('socket')
        if sock is not None and sock.family != socket.AF_UNIX:
            # asyncio sets it only on sockets it made itself: without it,
            # each answer waited for the client's delayed ACK (40 ms).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.tls = self.server.tls()
        self._deadline()

    def get_buffer(self, sizehint):
        return self.server.read_buffer

    def buffer_updated(self, nbytes):
        if self.closed:
            return
        data = bytes(self.server.read_buffer[:nbytes])
        if self.tls is None:
            self._feed(data)
            return
        if self.ssl is None:
            if data[0] != TLS_HANDSHAKE:
                self.server.rare.warning(
                    'plain', 'A client sent plain HTTP to the HTTPS port: '
                             'answered 400.')
                self._send_raw(PLAIN_HTTP_REPLY)
                return
            self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            self.ssl = self.tls.context.wrap_bio(
                self.incoming, self.outgoing, server_side=True)
        self.incoming.write(data)
        if self.handshaken:
            self._decrypt()
            return
        if self.incoming.pending > HANDSHAKE_INPUT:
            self._pause_reading()
        self.server.handshake_later(self)

    def eof_received(self):
        self.close()
        return False

    def pause_writing(self):
        self._writable = self.server.loop.create_future()

    def resume_writing(self):
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    def connection_lost(self, exc):
        self._forget()

    # -- TLS -----------------------------------------------------------------

    def handshake(self):
        failed = None
        try:
            self.ssl.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            if self.incoming.pending <= HANDSHAKE_INPUT:
                self._resume_reading()
            return
        except (ssl.SSLError, OSError) as e:
            failed = getattr(e, 'reason', None) or e
        if failed is not None:  # logged outside the except: no traceback
            self._flush()
            self._refuse(f'a TLS handshake failed: {failed}')
            return
        self.handshaken = True
        self._flush()
        if not self.tls.peer_allowed(self.ssl.getpeercert()):
            self._refuse('a client certificate has no SAN that '
                         'client_allowed_sans lists')
            return
        self._resume_reading()
        self._decrypt()

    def _decrypt(self):
        failed = None
        while not self.busy and not self.closed:
            try:
                data = self.ssl.read(READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:  # the client's close_notify
                self.close()
                return
            except (ssl.SSLError, OSError) as e:
                # a renegotiation refused, a bad record...
                failed = getattr(e, 'reason', None) or e
                break
            if not data:
                break
            self._feed(data)
        if not self.closed:
            self._flush()
        if failed is not None:
            self._refuse(f'a TLS connection failed: {failed}')

    def _flush(self):
        pending = self.outgoing.read()
        if pending and not self.transport.is_closing():
            self.transport.write(pending)

    def _refuse(self, why: str):
        self.server.rare.warning('refused', f'Refused a client: {why}.')
        self.close()

    # -- HTTP ----------------------------------------------------------------

    def _feed(self, data: bytes):
        try:
            self.http.receive_data(data)
        except h11.RemoteProtocolError:
            self.abort()
            return
        self._events()

    def _events(self):
        while not self.busy and not self.closed:
            try:
                event = self.http.next_event()
            except h11.RemoteProtocolError as e:
                self._send_raw(reply(e.error_status_hint,
                                      b'Bad Request.\n'))
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self._start(event)
                return
            if isinstance(event, h11.ConnectionClosed):
                self.close()
                return
            # Data or EndOfMessage of a body we do not read: the
            # connection closes after its answer anyway.

    def _start(self, event: h11.Request):
        if event.http_version not in (b'1.0', b'1.1'):
            # An HTTP/2 preface (PRI * HTTP/2.0): HTTP/1.1 only here.
            self._send_raw(reply(505, b'HTTP Version Not Supported: '
                                       b'HTTP/1.1 only.\n'))
            return
        self.busy = True
        self._pause_reading()
        self._cancel_deadline()
        headers = [(name, value) for name, value in event.headers]
        body = any(name == b'transfer-encoding' or (
            name == b'content-length' and value.strip() not in (b'0', b''))
            for name, value in headers)
        target = event.target.decode('latin-1')
        if target.startswith(('http://', 'https://')):
            parts = urllib.parse.urlsplit(target)
            path, query = parts.path or '/', parts.query
        else:
            path, _, query = target.partition('?')
        request = web_handler.Request(event.method.decode('latin-1'), path,
                                      query, headers, self.address)
        self._task = self.server.loop.create_task(
            self._answer(request, keep=not body))

    async def _answer(self, request, keep: bool):
        try:
            response = await self.server.handler(request)
        except Exception as e:  # logged, never a traceback per request
            more = self.server.rare.allow('handler')
            if more is not None:
                LOG.error('Answering %s %s failed: %s%s', request.method,
                          request.path, e, more)
            response = web_handler.text(500, b'Internal Server Error.\n')
        if self.closed:
            return
        if response.trusted:
            self.server.trust(self)
        head = request.method == 'HEAD'
        try:
            await self._respond(response, head, keep)
        except h11.LocalProtocolError:
            self.abort()
            return
        if self.closed:
            return
        if keep:
            self._end_of_request()
        if not keep or self.server.stopping or \
                self.http.our_state is not h11.DONE or \
                self.http.their_state is not h11.DONE:
            self.close()
            return
        self.http.start_next_cycle()
        self.busy = False
        self._deadline()
        self._resume_reading()
        if self.ssl is not None:
            self._decrypt()
        else:
            self._events()

    def _end_of_request(self) -> None:
        """Take the request's end (a request without a body has it
        already), so that the next one can be read.
        """
        try:
            while self.http.their_state is h11.SEND_BODY:
                event = self.http.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    return
        except h11.RemoteProtocolError:
            return

    async def _respond(self, response, head: bool, keep: bool):
        body = response.body
        headers = [(b'date', self.server.date()), *response.headers,
                   (b'content-length', str(len(body)).encode())]
        if not keep:
            headers.append((b'connection', b'close'))
        pending = [self.http.send(h11.Response(
            status_code=response.status, headers=headers,
            reason=http.HTTPStatus(response.status).phrase.encode()))]
        if not head:
            view = memoryview(body)
            for offset in range(0, len(body), CHUNK):
                if not await self._taken():
                    return
                # the head goes with the first piece: one TLS record,
                # one segment for a small answer
                pending += self.http.send_with_data_passthrough(
                    h11.Data(data=view[offset:offset + CHUNK]))
                self._write(b''.join(pending))
                pending = []
        pending.append(self.http.send(h11.EndOfMessage()))
        self._write(b''.join(pending))

    async def _taken(self) -> bool:
        """Wait until the client took what was written (at most
        client_timeout); whether the connection is still open.
        """
        while self._writable is not None and not self.closed:
            try:
                await asyncio.wait_for(asyncio.shield(self._writable),
                                       self.server.client_timeout)
            except asyncio.TimeoutError:
                self.server.rare.warning(
                    'slow', 'A client took nothing of its answer for '
                    f'{self.server.client_timeout:g}s: closed.')
                self.abort()
        return not self.closed

    def _write(self, data):
        if self.closed or self.transport.is_closing() or not data:
            return
        if self.ssl is None:
            self.transport.write(data)
            return
        try:
            self.ssl.write(data)
        except (ssl.SSLError, OSError):
            self.abort()
            return
        self._flush()

    def _send_raw(self, data: bytes):
        """Bytes for the client (encrypted if need be), then close."""
        self._write(data)
        self.close()

    # -- flow and time -------------------------------------------------------

    def _pause_reading(self):
        if self._reading and not self.transport.is_closing():
            self._reading = False
            self.transport.pause_reading()

    def _resume_reading(self):
        if not self._reading and not self.closed:
            self._reading = True
            self.transport.resume_reading()

    def _deadline(self):
        self._cancel_deadline()
        self._timer = self.server.loop.call_later(
            self.server.client_timeout, self._expired)

    def _cancel_deadline(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self):
        self._timer = None
        if not self.busy:
            self.abort()

    # -- ending --------------------------------------------------------------

    def _forget(self):
        if self.closed and self not in self.server.connections:
            return
        self.closed = True
        self._cancel_deadline()
        self.server.forget(self)
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def close(self):
        """Close once what was written has gone (at most client_timeout
        later: a client that reads nothing is then cut).
        """
        self._forget()
        self.transport.close()
        if self.transport.get_write_buffer_size():
            self.server.loop.call_later(self.server.client_timeout,
                                        self.transport.abort)

    def abort(self):
        self._forget()
        self.transport.abort()
