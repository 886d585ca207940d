"""The exporter's HTTP/1.1 server: connections, TLS and their limits, on
one asyncio event loop in a thread of its own.

Why not hypercorn (or any general ASGI server): it serves HTTP/2 to any
client that speaks it first, without TLS, whatever the web configuration
says (h2c with prior knowledge, which Go never serves); HTTP/2 streams a
client stops reading kept their memory and file descriptors for good, and
rapid resets kept a core busy for minutes after the attack; a request body
was read whole into memory; and TLS needed a relay of our own in front of
it (three file descriptors a connection). Here the server speaks HTTP/1.1
only (h11 parses it), on TLS or not, and owns each limit:

- **Memory a connection may hold is bounded.** Reads go into one buffer the
  whole server shares (a read is handled before the next one); bytes of a
  TLS handshake not yet done are kept up to ``HANDSHAKE_INPUT``, then
  reading pauses; a request's head may be ``MAX_HEAD`` bytes; while a
  request is answered nothing more is read; a request body is never read
  (the connection closes after the answer); a response is written in
  ``CHUNK`` pieces, the next only once the client took the last
  (``WRITE_HIGH``).
- **Time is bounded.** A client has ``client_timeout`` seconds to finish
  its handshake and send its request head, to send the next one on a kept
  connection, and to take each piece of a response; after that it is cut.
- **Nobody is locked out by strangers.** At most ``max_connections`` are
  open, ``per_address`` from one address (from the file-descriptor limit).
  When a new connection finds the table full, the oldest connection that
  was never let in (no request answered with credentials, or at all) and
  is not being answered is closed to make room: idle or handshaking
  strangers cannot keep a scraper out, and a connection a scraper was let
  in on is never closed for another.
- **TLS handshakes never hold up the loop**: they are done in slices of
  ``HANDSHAKE_BUDGET`` seconds per turn of the event loop, oldest first,
  so connected clients are served between slices; each connection takes
  the TLS context current when it arrives (``tls()``).

Refusals are logged once a minute at most, counted. The server hands each
request to ``handler`` (nova.exporter.web.handler: a Request in, a
Response out) and knows nothing of credentials, metrics or libvirt.
"""

import asyncio
import collections
import ctypes
import email.utils
import http
import logging
import resource
import socket
import ssl
import threading
import time
import urllib.parse

import h11

from nova.exporter.web import handler as web_handler
from nova.exporter.web import rarelog

LOG = logging.getLogger(__name__)

READ_SIZE = 16 * 1024
MAX_HEAD = 16 * 1024
HANDSHAKE_INPUT = 32 * 1024
CHUNK = 64 * 1024
WRITE_HIGH = 64 * 1024
HANDSHAKE_BUDGET = 0.002
BACKLOG = 1024
# File descriptors kept for what is not a client (libvirt, logs, files).
RESERVED_FDS = 64
# What Go's net/http answers to plain HTTP on a TLS port.
PLAIN_HTTP_REPLY = (b'HTTP/1.0 400 Bad Request\r\n\r\n'
                    b'Client sent an HTTP request to an HTTPS server.\n')
TLS_HANDSHAKE = 0x16  # the first byte of a TLS record carrying a handshake


# After this many connections were open at once, memory is handed back to
# the system when the last one closes (glibc keeps freed memory otherwise).
TRIM_AFTER = 64


def release_memory() -> None:
    """glibc's malloc_trim(0), where there is one: memory a flood of
    connections took goes back to the system once they closed. The C
    library is found in the process itself (no ldconfig run).
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)


def connection_limits(nofile: int | None = None) -> tuple[int, int]:
    """(connections at most, from one address at most) for a process
    that may open ``nofile`` files (default: its soft limit): all but
    RESERVED_FDS of them, 4,096 at most.
    """
    if nofile is None:
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    most = max(16, min(4096, nofile - RESERVED_FDS))
    return most, max(4, most // 4)


def listen(address: str, port: int) -> socket.socket:
    """A bound listening socket; OSError as bind() raises it."""
    family = socket.AF_INET6 if ':' in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((address, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def _reply(status: int, body: bytes) -> bytes:
    """A whole response that closes the connection, written by hand for
    requests h11 could not parse.
    """
    return (f'HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n'
            'Content-Type: text/plain; charset=utf-8\r\n'
            f'Content-Length: {len(body)}\r\nConnection: close\r\n\r\n'
            ).encode() + body


class _Date:
    """The Date header, formatted once a second."""

    def __init__(self):
        self._second, self._value = None, b''

    def __call__(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = email.utils.formatdate(now, usegmt=True).encode()
        return self._value


class HTTPServer:
    """Serves ``handler`` on ``sockets`` (bound, listening) from a thread
    of its own. ``tls()`` gives the ServerTLS for a new connection, or None
    for plain HTTP. ``heartbeat``, when given, is called from the event
    loop every ``heartbeat_interval`` seconds: it stops being called when
    the loop stops answering.
    """

    def __init__(self, handler, sockets: list, client_timeout: float,
                 tls=None, heartbeat=None, heartbeat_interval=None,
                 limits: tuple[int, int] | None = None):
        self.handler = handler
        self.sockets = list(sockets)
        self.client_timeout = client_timeout
        self.tls = tls or (lambda: None)
        self._heartbeat = heartbeat
        self._heartbeat_interval = heartbeat_interval
        self.max_connections, self.per_address = limits or \
            connection_limits()
        self.read_buffer = bytearray(READ_SIZE)
        self.connections: set = set()
        self._high_water = 0
        self.by_address: collections.Counter = collections.Counter()
        # Connections never let in, oldest first: all, and by address.
        self._strangers: collections.OrderedDict = collections.OrderedDict()
        self._strangers_of: dict[str, collections.OrderedDict] = {}
        self._handshakes: collections.deque = collections.deque()
        self._draining = False
        self.rare = rarelog.RareLog(LOG)
        self.date = _Date()
        #: set when a connection failed to be accepted for want of fds
        self.fds_exhausted = False
        self._servers: list = []
        self._stopping = False
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._loop_error)
        self._thread = threading.Thread(target=self._run, name='http',
                                        daemon=True)
        self._started = threading.Event()

    @property
    def port(self) -> int:
        return self.sockets[0].getsockname()[1]

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    # -- running -------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self._started.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        rarelog.quiet_asyncio()
        try:
            for sock in self.sockets:
                self._servers.append(self._loop.run_until_complete(
                    self._loop.create_server(
                        lambda: _Connection(self), sock=sock,
                        backlog=BACKLOG)))
            if self._heartbeat is not None and self._heartbeat_interval:
                self._loop.create_task(self._beat())
            self._started.set()
            self._loop.run_forever()
        finally:
            self._started.set()
            for connection in list(self.connections):
                connection.abort()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    async def _beat(self) -> None:
        while True:
            self._heartbeat()
            await asyncio.sleep(self._heartbeat_interval)

    def _loop_error(self, loop, context) -> None:
        if 'out of system resource' in context.get('message', ''):
            # asyncio retries accept() a second later; say it once.
            if not self.fds_exhausted:
                LOG.error('Out of file descriptors: new connections are '
                          'refused until some close; raise the limit '
                          '(LimitNOFILE) if clients are legitimate.')
            self.fds_exhausted = True
            return
        more = self.rare.allow('loop:' + context.get('message', ''))
        if more is not None:
            LOG.warning('HTTP event loop: %s%s', context.get('message'),
                        more)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving: stop listening, give requests being answered at
        most a second, then close every connection.
        """
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop_on_loop)
            self._thread.join(timeout)
        for sock in self.sockets:
            sock.close()

    def _stop_on_loop(self) -> None:
        self._stopping = True
        for server in self._servers:
            server.close()
        for connection in list(self.connections):
            if not connection.busy:
                connection.abort()
        self._loop.create_task(self._last_answers())

    async def _last_answers(self) -> None:
        deadline = self._loop.time() + 1.0
        while any(c.busy for c in self.connections) and \
                self._loop.time() < deadline:
            await asyncio.sleep(0.02)
        self._loop.stop()

    # -- the connection table ------------------------------------------------

    def admit(self, connection) -> bool:
        """Whether ``connection`` may stay, making room by closing the
        oldest stranger where the table (or its address's share) is full.
        """
        address = connection.address
        if len(self.connections) >= self.max_connections and \
                not self._evict(self._strangers, 'connections'):
            return False
        if self.by_address[address] >= self.per_address and \
                not self._evict(self._strangers_of.get(address, {}),
                                'connections from one address'):
            return False
        self.fds_exhausted = False
        self.connections.add(connection)
        self._high_water = max(self._high_water, len(self.connections))
        self.by_address[address] += 1
        self._strangers[connection] = None
        self._strangers_of.setdefault(address, collections.OrderedDict())[
            connection] = None
        return True

    def _evict(self, strangers, what: str) -> bool:
        for victim in strangers:
            if not victim.busy:
                self.rare.warning(
                    'full', f'{len(self.connections)} {what} open (at most '
                    f'{self.max_connections}, {self.per_address} from one '
                    'address): the oldest that was never let in is closed '
                    'for each new one.')
                victim.abort()
                return True
        self.rare.warning('refused', f'{len(self.connections)} {what} open,'
                          ' every one let in or being answered: new ones '
                          'are closed until some end.')
        return False

    def trust(self, connection) -> None:
        """``connection`` was let in: never closed to make room."""
        self._strangers.pop(connection, None)
        mine = self._strangers_of.get(connection.address)
        if mine is not None:
            mine.pop(connection, None)

    def forget(self, connection) -> None:
        if connection not in self.connections:
            return
        self.connections.discard(connection)
        self.trust(connection)
        address = connection.address
        self.by_address[address] -= 1
        if not self.by_address[address]:
            del self.by_address[address]
            self._strangers_of.pop(address, None)
        if not self.connections and self._high_water >= TRIM_AFTER:
            self._high_water = 0
            release_memory()

    # -- TLS handshakes ------------------------------------------------------

    def handshake_later(self, connection) -> None:
        if connection.queued:
            return
        connection.queued = True
        self._handshakes.append(connection)
        if not self._draining:
            self._draining = True
            self._loop.call_soon(self._drain)

    def _drain(self) -> None:
        """Handshake work for at most HANDSHAKE_BUDGET seconds, then the
        rest on the next turn, after the I/O of this one.
        """
        began = time.perf_counter()
        while self._handshakes and \
                time.perf_counter() - began < HANDSHAKE_BUDGET:
            connection = self._handshakes.popleft()
            connection.queued = False
            if not connection.closed:
                connection.handshake()
        if self._handshakes:
            self._loop.call_soon(self._drain)
        else:
            self._draining = False


class _Connection(asyncio.BufferedProtocol):
    """One client: TLS on memory buffers (when the server has TLS), then
    HTTP/1.1 through h11, one request at a time.
    """

    def __init__(self, server: HTTPServer):
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
        if self.server._stopping or not self.server.admit(self):
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
                self._send_raw(_reply(e.error_status_hint,
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
            self._send_raw(_reply(505, b'HTTP Version Not Supported: '
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
        if not keep or self.server._stopping or \
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
