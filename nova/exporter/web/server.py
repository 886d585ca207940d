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

- **Memory is bounded by construction.** Each connection's
  ServerConnection (nova.exporter.web.protocol) holds at most RAW_WINDOW
  bytes received and not parsed and a head of MAX_HEAD in h11; its
  transport at most WRITE_WINDOW bytes of answers not yet taken
  (nova.exporter.web.connection). Reads go into one buffer the whole
  server shares and are handed on at once. So a connection holds at most
  CONNECTION_BYTES, and the server at most ``max_connections`` of them:
  the cap comes from MEMORY_BUDGET as well as from the file descriptors.
- **Time is bounded.** A client has ``client_timeout`` seconds to finish
  its handshake and send its request head, to send the next one on a kept
  connection, and to take each piece of a response; after that it is cut.
- **Strangers never keep a scraper out.** At most ``max_connections`` are
  open, ``per_address`` from one address. A new connection that finds its
  scope full closes the one that costs a scraper least
  (nova.exporter.web.table): in its handshake or head, idle, not let in,
  not reading its answer; it is refused only when every one is a scrape
  being answered.
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
import logging
import resource
import socket
import threading
import time

from nova.exporter.web import connection
from nova.exporter.web import protocol
from nova.exporter.web import rarelog
from nova.exporter.web import table

LOG = logging.getLogger(__name__)

HANDSHAKE_BUDGET = 0.002
BACKLOG = 1024
# File descriptors kept for what is not a client (libvirt, logs, files).
RESERVED_FDS = 64
# What one connection may hold, at most: its input window, h11's head and
# feed, its output window, and the slack of a TLS handshake flight and
# records' overhead (72 KiB).
CONNECTION_BYTES = (protocol.RAW_WINDOW + protocol.MAX_HEAD + protocol.FEED +
                    connection.WRITE_WINDOW + 8 * 1024)
# What all connections together may hold, at most: the cap on connections
# is MEMORY_BUDGET // CONNECTION_BYTES (4,096) where the descriptors allow
# more. Under the unit's MemoryMax=512M, beside the process's own ~60 MB.
MEMORY_BUDGET = 288 * 1024 * 1024


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
    RESERVED_FDS of them, and no more than MEMORY_BUDGET allows.
    """
    if nofile is None:
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    most = max(16, min(MEMORY_BUDGET // CONNECTION_BYTES,
                       nofile - RESERVED_FDS))
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
        self.table = table.ConnectionTable(*(limits or connection_limits()))
        # Every read goes here first, and is handed on at once.
        self.read_view = memoryview(bytearray(connection.READ_SIZE))
        self._high_water = 0
        self._handshakes: collections.deque = collections.deque()
        self._draining = False
        self.rare = rarelog.RareLog(LOG)
        self.date = _Date()
        #: set when a connection failed to be accepted for want of fds
        self.fds_exhausted = False
        self._servers: list = []
        #: set once stop() began: new connections are refused
        self.stopping = False
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

    # -- running --------------------------------------------------------------

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
                        lambda: connection.Connection(self), sock=sock,
                        backlog=BACKLOG)))
            if self._heartbeat is not None and self._heartbeat_interval:
                self._loop.create_task(self._beat())
            self._started.set()
            self._loop.run_forever()
        finally:
            self._started.set()
            for client in list(self.table):
                client.abort()
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
        self.stopping = True
        for server in self._servers:
            server.close()
        # As Go's Shutdown: idle connections close now; one being answered,
        # or new and yet to send its first request (a scraper that
        # connected just before), has the last second.
        for client in list(self.table):
            if not client.busy and not client.fresh:
                client.abort()
        self._loop.create_task(self._last_answers())

    async def _last_answers(self) -> None:
        deadline = self._loop.time() + 1.0
        while any(c.busy or c.fresh for c in self.table) and \
                self._loop.time() < deadline:
            await asyncio.sleep(0.02)
        self._loop.stop()

    # -- the connection table -------------------------------------------------

    def admit(self, client) -> bool:
        """Whether ``client`` may stay; where the table (or its address's
        share) is full, the connection that costs a scraper least is
        closed for it (nova.exporter.web.table).
        """
        admitted, victim = self.table.admit(client, client.address)
        if victim is not None:
            self.rare.warning(
                'full', f'{len(self.table)} connections open (at most '
                f'{self.table.most}, {self.table.per_address} from one '
                'address): for each new one, the one that costs a scraper '
                'least is closed (idle or in its handshake, not let in, '
                'or not reading its answer).')
            victim.abort()
        if not admitted:
            self.rare.warning(
                'refused', f'{len(self.table)} connections open (at most '
                f'{self.table.most}, {self.table.per_address} from one '
                'address), every one a scrape being answered: new ones are '
                'closed until some end.')
            return False
        self.fds_exhausted = False
        self._high_water = max(self._high_water, len(self.table))
        return True

    def set_rank(self, client, rank) -> None:
        self.table.set_rank(client, rank)

    def forget(self, client) -> None:
        if client not in self.table:
            return
        self.table.remove(client)
        if not len(self.table) and self._high_water >= TRIM_AFTER:
            self._high_water = 0
            release_memory()

    # -- TLS handshakes -------------------------------------------------------

    def handshake_later(self, client) -> None:
        if client.queued:
            return
        client.queued = True
        self._handshakes.append(client)
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
            client = self._handshakes.popleft()
            client.queued = False
            if not client.closed:
                client.handshake()
        if self._handshakes:
            self._loop.call_soon(self._drain)
        else:
            self._draining = False


