"""TLS in front of the HTTP server: one small protocol per connection.

Why not asyncio's own TLS (``start_server(ssl=...)``): it fixes one
context for the server's life (a reloaded web configuration could not
apply), keeps a 256 KiB buffer per connection (5,000 idle TLS clients took
1.6 GB), logs each refused handshake or renegotiation with a traceback,
cannot look at a client certificate's SANs before the request, and gives
plain HTTP on the TLS port an empty reply.

Here each connection takes the web configuration current when it arrives
(open connections keep theirs), decrypts through an ``ssl.SSLObject`` on
memory buffers read 16 KiB at a time, refuses a certificate without an
allowed SAN right after the handshake, answers plain HTTP with the
toolkit's 400, and relays the decrypted bytes to the HTTP server on a Unix
socket only this process's user can reach. Handshakes must finish within
the client timeout; connections beyond ``max_connections`` are closed at
once. Refusals are logged once a minute at most, counted. Nothing here
knows HTTP beyond that 400, nor libvirt.
"""

import asyncio
import collections
import ctypes
import ctypes.util
import logging
import ssl
import time

LOG = logging.getLogger(__name__)

READ_SIZE = 16 * 1024
# Handshake work done per turn of the event loop, at most: clients already
# connected (a scraper on its kept-alive connection) are served between
# turns, however many strangers are handshaking.
HANDSHAKE_BUDGET = 0.002
# Connections waiting for handshake work; beyond, new ones are closed.
HANDSHAKE_QUEUE = 256
# What Go's net/http answers to plain HTTP on a TLS port.
PLAIN_HTTP_REPLY = (b'HTTP/1.0 400 Bad Request\r\n\r\n'
                    b'Client sent an HTTP request to an HTTPS server.\n')
TLS_HANDSHAKE = 0x16  # the first byte of a TLS record carrying a handshake


def _malloc_trim():
    """glibc's malloc_trim(0), or a no-op: memory a flood of connections
    took goes back to the system once they closed, instead of staying in
    the allocator's free lists.
    """
    name = ctypes.util.find_library('c')
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):
        return lambda: None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: trim(0)


release_memory = _malloc_trim()
# After this many connections were open at once, memory is handed back
# when the last one closes.
TRIM_AFTER = 64


class RareLog:
    """Logs a kind of event at most once per ``interval`` seconds, with
    how many were not logged since: floods cost one line a minute.
    """

    def __init__(self, logger, interval: float = 60.0,
                 clock=time.monotonic):
        self._log, self._interval, self._clock = logger, interval, clock
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    def warning(self, kind: str, message: str) -> bool:
        """Log ``message`` unless ``kind`` was logged within the
        interval; whether it was logged.
        """
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self._interval:
            self._quiet[kind] = self._quiet.get(kind, 0) + 1
            return False
        quiet = self._quiet.pop(kind, 0)
        more = (f' ({quiet} more like it in the last '
                f'{now - last:.0f}s)' if quiet and last is not None else '')
        self._log.warning('%s%s', message, more)
        self._last[kind] = now
        return True


class TLSFront:
    """Terminates TLS on ``sock`` and relays to the Unix socket
    ``upstream``; ``web()`` gives the current WebConfig.
    """

    def __init__(self, sock, upstream: str, web, handshake_timeout: float,
                 max_connections: int, per_address: int, backlog: int):
        self.sock, self.upstream, self.web = sock, upstream, web
        self.handshake_timeout = handshake_timeout
        self.max_connections = max_connections
        self.per_address = per_address
        self.backlog = backlog
        self.connections: set = set()
        self.by_address: dict[str, int] = {}
        self.high_water = 0
        self.rare = RareLog(LOG)
        self._server = None
        self._handshakes: collections.deque = collections.deque()
        self._draining = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), sock=self.sock, backlog=self.backlog)

    def handshake_later(self, connection) -> bool:
        """Queue ``connection``'s handshake work; False when the queue is
        full (the connection should be dropped).
        """
        if connection.queued:
            return True
        if len(self._handshakes) >= HANDSHAKE_QUEUE:
            return False
        connection.queued = True
        self._handshakes.append(connection)
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().call_soon(self._drain)
        return True

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
            asyncio.get_running_loop().call_soon(self._drain)
        else:
            self._draining = False

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.abort()


class _Connection(asyncio.Protocol):
    """One client: TLS on memory buffers, relayed to the HTTP server."""

    def __init__(self, front: TLSFront):
        self.front = front
        self.transport = None
        self.upstream = None
        self.handshaken = False
        self.first = True
        self.closed = False
        #: waiting in the front's handshake queue
        self.queued = False
        self.timer = None
        self.address = ''

    # -- the client side ----------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        front = self.front
        peer = transport.get_extra_info('peername')
        self.address = peer[0] if isinstance(peer, tuple) else str(peer)
        if len(front.connections) >= front.max_connections or \
                front.by_address.get(self.address, 0) >= front.per_address:
            front.rare.warning('full', f'{len(front.connections)} TLS '
                                       'connections open (at most '
                                       f'{front.per_address} from one '
                                       'address): new ones are closed '
                                       'until some end.')
            transport.abort()
            self.closed = True
            return
        front.connections.add(self)
        front.high_water = max(front.high_water, len(front.connections))
        front.by_address[self.address] = front.by_address.get(
            self.address, 0) + 1
        self.web = front.web()
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.ssl = self.web.ssl_context().wrap_bio(
            self.incoming, self.outgoing, server_side=True)
        self.timer = asyncio.get_running_loop().call_later(
            front.handshake_timeout, self._handshake_timeout)

    def _handshake_timeout(self):
        if not self.handshaken:
            self.abort()

    def data_received(self, data: bytes):
        if self.closed:
            return
        if self.first:
            self.first = False
            if data[:1] != bytes([TLS_HANDSHAKE]):
                self.front.rare.warning(
                    'plain', 'A client sent plain HTTP to the HTTPS port: '
                             'answered 400.')
                self.transport.write(PLAIN_HTTP_REPLY)
                self.close()
                return
        self.incoming.write(data)
        if self.handshaken:
            self._decrypt()
        elif not self.front.handshake_later(self):
            self.front.rare.warning('busy', f'{HANDSHAKE_QUEUE} TLS '
                                    'handshakes wait: new connections are '
                                    'closed until they drain.')
            self.abort()

    def handshake(self):
        failed = None
        try:
            self.ssl.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except (ssl.SSLError, OSError) as e:
            failed = getattr(e, 'reason', None) or e
        if failed is not None:  # logged outside the except: no traceback
            self._flush()
            self._refuse(f'a TLS handshake failed: {failed}')
            return
        self.handshaken = True
        self.timer.cancel()
        self._flush()
        if not self.web.peer_allowed(self.ssl.getpeercert()):
            self._refuse('a client certificate has no SAN that '
                         'client_allowed_sans lists')
            return
        # Nothing is read from the client until the relay is open.
        self.transport.pause_reading()
        asyncio.get_running_loop().create_task(self._open_upstream())

    async def _open_upstream(self):
        loop = asyncio.get_running_loop()
        try:
            _, self.upstream = await loop.create_unix_connection(
                lambda: _Upstream(self), self.front.upstream)
        except OSError as e:
            LOG.error('Cannot reach the HTTP server (%s): %s',
                      self.front.upstream, e)
            self.abort()
            return
        if self.closed:
            self.upstream.transport.close()
            return
        self.transport.resume_reading()
        self._decrypt()

    def _decrypt(self):
        if self.upstream is None:
            return
        failed = None
        while True:
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
            self.upstream.transport.write(data)
        self._flush()
        if failed is not None:
            self._refuse(f'a TLS connection failed: {failed}')

    def _refuse(self, why: str):
        self.front.rare.warning('refused', f'Refused a client: {why}.')
        self.close()

    def _flush(self):
        pending = self.outgoing.read()
        if pending and not self.transport.is_closing():
            self.transport.write(pending)

    def send(self, data: bytes):
        """Bytes from the HTTP server, encrypted to the client."""
        if self.closed:
            return
        try:
            self.ssl.write(data)
        except (ssl.SSLError, OSError):
            self.abort()
            return
        self._flush()

    def pause_writing(self):
        if self.upstream is not None:
            self.upstream.transport.pause_reading()

    def resume_writing(self):
        if self.upstream is not None:
            self.upstream.transport.resume_reading()

    def eof_received(self):
        self.close()
        return False

    def connection_lost(self, exc):
        self._forget()
        if self.upstream is not None:
            self.upstream.transport.close()

    # -- ending -------------------------------------------------------------

    def _forget(self):
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        if self in self.front.connections:
            self.front.connections.discard(self)
            left = self.front.by_address[self.address] - 1
            if left:
                self.front.by_address[self.address] = left
            else:
                del self.front.by_address[self.address]
            if not self.front.connections and \
                    self.front.high_water >= TRIM_AFTER:
                self.front.high_water = 0
                release_memory()

    def close(self):
        """Close once what was written has gone."""
        self._forget()
        self.transport.close()

    def abort(self):
        self._forget()
        self.transport.abort()


class _Upstream(asyncio.Protocol):
    """The relay's side toward the HTTP server."""

    def __init__(self, client: _Connection):
        self.client = client
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes):
        self.client.send(data)

    def pause_writing(self):
        self.client.transport.pause_reading()

    def resume_writing(self):
        self.client.transport.resume_reading()

    def connection_lost(self, exc):
        # The HTTP server ended the connection (idle, or done).
        if not self.client.closed:
            self.client.close()
