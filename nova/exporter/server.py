"""The exporter's HTTP server: hypercorn (asyncio) and a small ASGI app.

Why not prometheus_client's own server: it does the TLS handshake inside
accept() on its only thread (one idle client blocks every scrape and
SIGTERM), starts a thread per connection with no timeout, and listens with
a backlog of 5. Here every connection is a task on one event loop: TLS
handshakes run on it without blocking anyone, a client that has not sent
its request within ``client_timeout`` (or keeps an idle connection that
long) is cut, no thread is spent per connection, the backlog fits a busy
host, and when the process runs out of file descriptors new connections
are refused (one log line) until some close (a connection whose client
left is closed at the latest ``client_timeout`` later). prometheus_client still
writes the exposition format.

The app serves ``/metrics`` (GET, or HEAD), a landing page at ``/`` and
a liveness answer at ``/-/healthy`` (never polls libvirt, needs no
credentials: for load balancers and process supervisors), 404 elsewhere;
with basic auth configured, a request without valid credentials gets 401
before libvirt is polled. Once the server is stopping, a scrape still
waiting gets 503 at once. A poll runs on a worker
thread; scrapes that arrive while it runs share its figures. Nothing here
talks to libvirt or reads nova.conf.
"""

import asyncio
import base64
import binascii
import concurrent.futures
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import urllib.parse

from hypercorn import config as hyper_config
import hypercorn.asyncio as hyper_asyncio
from prometheus_client import exposition

from nova.exporter import encoding
from nova.exporter import tlsfront

LOG = logging.getLogger(__name__)
# hypercorn's own lines ("Running on ... (CTRL + C to quit)") say less than
# the service's; its warnings and errors still come through.
_HYPERCORN_LOG = logging.getLogger(__name__ + '.hypercorn')

BACKLOG = 1024
LANDING = b"""<!DOCTYPE html>
<html><head><title>nova-libvirt-exporter</title></head><body>
<h1>nova-libvirt-exporter</h1>
<p>Memory-balloon statistics of this host's libvirt guests, for Prometheus:
<a href="metrics">/metrics</a>.</p>
</body></html>
"""


HEALTHY = b'Healthy.\n'


class _Stopping(Exception):
    """The server stops: a request still waiting is answered 503."""


class _Shed(Exception):
    """Too much unauthenticated work waits: answered 429 at once."""


class _RateLimiter:
    """Go's rate.Limiter as the toolkit uses it: a bucket of ``burst``
    tokens, one more every ``interval`` seconds; burst 0 refuses all.
    """

    def __init__(self, limit, clock=time.monotonic):
        self.limit, self._clock = limit, clock
        self._tokens = float(limit.burst)
        self._at = clock()

    def allow(self) -> bool:
        now = self._clock()
        self._tokens = min(float(self.limit.burst), self._tokens + (
            now - self._at) / self.limit.interval)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class MetricsApp:
    """ASGI app: /metrics, /, /-/healthy, basic auth, the web
    configuration's headers and rate limit.

    Password checks run on a pool of their own (one thread: bcrypt holds a
    CPU for tens of milliseconds a check), never on the polls' executor,
    and at most ``AUTH_QUEUE`` wait for it: beyond that a request whose
    credentials are not already known is answered 429 at once. Known
    credentials (the scraper's, after its first request) are answered from
    the cache on the event loop, so a flood of wrong passwords cannot delay
    an authenticated scrape.
    """

    AUTH_QUEUE = 16

    def __init__(self, poll, web_config, executor, auth_executor=None):
        #: poll() -> metric families (blocking; run on the executor)
        self._poll_fn = poll
        self._executor = executor
        self._auth_executor = auth_executor or executor
        self._auth_waiting = 0
        # Checks running, by credentials: the same credentials sent by
        # many clients at once cost one bcrypt check.
        self._checking: dict[bytes, asyncio.Future] = {}
        self._rare = tlsfront.RareLog(LOG)
        self.web = web_config
        self._current: asyncio.Future | None = None
        # The encoded bodies of the latest poll's families, by (content
        # type, name filter, gzip): scrapes that share a poll share these.
        self._encoded_for = None
        self._encoded: dict = {}
        #: set when a connection failed to be accepted for want of fds
        self.fds_exhausted = False
        self._stopping: asyncio.Event | None = None

    @property
    def web(self):
        return self._web

    @web.setter
    def web(self, web_config):
        """Swap the web configuration: the next request uses it."""
        self._web = web_config
        self._limiter = (None if web_config.rate_limit is None else
                         _RateLimiter(web_config.rate_limit))
        self._extra = [(name.lower().encode(), value.encode('latin-1'))
                       for name, value in web_config.headers.items()]

    def stopping(self) -> None:
        """Answer 503 to requests still waiting (call on the loop)."""
        self._stop_event().set()

    def _stop_event(self) -> asyncio.Event:
        if self._stopping is None:
            self._stopping = asyncio.Event()
        return self._stopping

    async def _unless_stopping(self, future):
        """``future``'s result, or _Stopping once the server stops."""
        stop = asyncio.ensure_future(self._stop_event().wait())
        try:
            done, _ = await asyncio.wait(
                {future, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if future not in done:
            raise _Stopping()
        return future.result()

    async def _poll(self):
        """This poll's families: the one running, or a new one."""
        if self._current is None or self._current.done():
            loop = asyncio.get_running_loop()
            self._current = loop.run_in_executor(self._executor,
                                                 self._poll_fn)
        return await self._unless_stopping(asyncio.shield(self._current))

    async def _authorized(self, web, headers: dict) -> bool:
        if not web.users:
            return True
        value = headers.get(b'authorization', b'')
        scheme, _, encoded = value.partition(b' ')
        if scheme.lower() != b'basic':
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except binascii.Error:
            return False
        user, sep, password = decoded.partition(b':')
        if not sep:
            return False
        user = user.decode('utf-8', 'surrogateescape')
        key = web.passwords.key(user, password)
        known = web.passwords.cached(key)
        if known is not None:
            return known
        running = self._checking.get(key)
        if running is not None:
            return await self._unless_stopping(asyncio.shield(running))
        if self._auth_waiting >= self.AUTH_QUEUE:
            self._rare.warning('shed', f'More than {self.AUTH_QUEUE} '
                               'password checks wait: further requests '
                               'with unknown credentials get 429 until '
                               'they drain (a client guessing passwords?).')
            raise _Shed()
        # Counted until the check ends, even if its client left: what
        # waits in the pool is bounded, not only what clients wait for.
        self._auth_waiting += 1
        loop = asyncio.get_running_loop()
        check = self._checking[key] = loop.run_in_executor(
            self._auth_executor, web.passwords.check, user, password, key)
        check.add_done_callback(lambda _: self._checked(key))
        return await self._unless_stopping(asyncio.shield(check))

    def _checked(self, key: bytes) -> None:
        self._auth_waiting -= 1
        self._checking.pop(key, None)

    async def __call__(self, scope, receive, send):
        if scope['type'] == 'lifespan':
            while True:
                message = await receive()
                kind = message['type'].rsplit('.', 1)[-1]
                await send({'type': f'lifespan.{kind}.complete'})
                if kind == 'shutdown':
                    return
        if scope['type'] != 'http':
            return
        head = scope['method'] == 'HEAD'
        try:
            await self._serve(scope, send, head)
        except _Stopping:
            await self._respond(send, 503, b'Stopping.\n', head)
        except _Shed:
            await self._respond(send, 429, b'Too Many Requests.\n', head,
                                [(b'retry-after', b'1')])

    async def _serve(self, scope, send, head: bool):
        self.fds_exhausted = False
        web = self._web
        if scope['path'] == '/-/healthy' and scope['method'] in ('GET',
                                                                 'HEAD'):
            return await self._respond(send, 200, HEALTHY, head)
        if self._limiter is not None and not self._limiter.allow():
            raise _Shed()
        if scope['method'] not in ('GET', 'HEAD'):
            return await self._respond(send, 405, b'Use GET.\n', head,
                                       [(b'allow', b'GET, HEAD')])
        headers = dict(scope['headers'])
        if not await self._authorized(web, headers):
            return await self._respond(
                send, 401, b'Unauthorized.\n', head,
                [(b'www-authenticate',
                  b'Basic realm="nova-libvirt-exporter"')])
        if scope['path'] == '/':
            return await self._respond(send, 200, LANDING, head,
                                       [(b'content-type',
                                         b'text/html; charset=utf-8')])
        if scope['path'] != '/metrics':
            return await self._respond(send, 404, b'Not found: see '
                                       b'/metrics.\n', head)
        query = urllib.parse.parse_qs(scope['query_string'].decode(
            'latin-1'))
        families = await self._poll()
        names = tuple(query.get('name[]', ()))
        accept = headers.get(b'accept', b'').decode('latin-1')
        zipped = 'gzip' in headers.get(b'accept-encoding', b'').decode(
            'latin-1')
        body, content_type = await self._body(families, accept, names,
                                              zipped)
        extra = [(b'content-type', content_type.encode())]
        if zipped:
            extra.append((b'content-encoding', b'gzip'))
        await self._respond(send, 200, body, head, extra)

    async def _body(self, families, accept: str, names: tuple,
                    zipped: bool) -> tuple[bytes, str]:
        """(body, content type) of ``families`` (encoding.encode), made
        once per poll for each format, name filter and compression: fifty
        scrapes sharing a poll cost one encoding, not fifty.
        """
        if self._encoded_for is not families:
            self._encoded_for, self._encoded = families, {}
        # (the content type: Accept headers that ask for one format)
        key = (exposition.choose_encoder(accept)[1], names, zipped)
        body = self._encoded.get(key)
        if body is None:
            body = self._encoded[key] = asyncio.get_running_loop(
            ).run_in_executor(self._executor, encoding.encode, families,
                              accept, names, zipped)
        return await self._unless_stopping(asyncio.shield(body))

    async def _respond(self, send, status: int, body: bytes, head: bool,
                       headers: list | None = None):
        headers = list(headers or ())
        if not any(name == b'content-type' for name, _ in headers):
            headers.append((b'content-type', b'text/plain; charset=utf-8'))
        headers += self._extra
        headers.append((b'content-length', str(len(body)).encode()))
        await send({'type': 'http.response.start', 'status': status,
                    'headers': headers})
        await send({'type': 'http.response.body',
                    'body': b'' if head else body})


class _Config(hyper_config.Config):
    """hypercorn's configuration, serving the sockets we made."""

    def __init__(self, sockets: hyper_config.Sockets):
        super().__init__()
        self._sockets = sockets

    def create_sockets(self) -> hyper_config.Sockets:
        return self._sockets


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


class HTTPServer:
    """Serves ``app`` on ``sock`` from a thread of its own.

    Plain HTTP: hypercorn on ``sock``. HTTPS: nova.exporter.tlsfront on
    ``sock`` (each connection with the web configuration current when it
    arrives), relaying to hypercorn on a Unix socket in a directory only
    this user may enter. ``heartbeat``, when given, is called from the
    event loop every ``heartbeat_interval`` seconds: it stops being called
    when the loop stops answering.
    """

    #: TLS connections open at once, and from one address; beyond, new
    #: ones are closed at once (each holds three file descriptors).
    MAX_CONNECTIONS = 1024
    PER_ADDRESS = 256

    def __init__(self, app: MetricsApp, sock: socket.socket,
                 client_timeout: float, heartbeat=None,
                 heartbeat_interval: float | None = None):
        self.app, self.sock = app, sock
        self._heartbeat = heartbeat
        self._heartbeat_interval = heartbeat_interval
        self._front = None
        self._private = None
        if app.web.tls:
            self._private = tempfile.mkdtemp(prefix='nova-libvirt-exporter-')
            path = os.path.join(self._private, 'http.sock')
            inner = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            inner.bind(path)
            inner.listen(BACKLOG)
            self._front = tlsfront.TLSFront(
                sock, path, lambda: self.app.web, client_timeout,
                self.MAX_CONNECTIONS, self.PER_ADDRESS, BACKLOG)
            sockets = hyper_config.Sockets([], [inner], [])
        else:
            sockets = hyper_config.Sockets([], [sock], [])
        config = _Config(sockets)
        # A client must send its request, and keep an idle connection
        # open, each within client_timeout (its TLS handshake too: the
        # front's bound).
        config.read_timeout = client_timeout
        config.keep_alive_timeout = client_timeout
        config.graceful_timeout = 1.0
        config.backlog = BACKLOG
        # Set here, not at import: importing changes no logger.
        _HYPERCORN_LOG.setLevel(logging.WARNING)
        config.errorlog = _HYPERCORN_LOG
        config.accesslog = None
        self._config = config
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._loop_error)
        self._stopping = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name='http',
                                        daemon=True)

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        if self._heartbeat is not None and self._heartbeat_interval:
            self._loop.create_task(self._beat())
        try:
            if self._front is not None:
                self._loop.run_until_complete(self._front.start())
            self._loop.run_until_complete(hyper_asyncio.serve(
                self.app, self._config,
                shutdown_trigger=self._stopping.wait))
        finally:
            self._loop.close()

    async def _beat(self) -> None:
        while True:
            self._heartbeat()
            await asyncio.sleep(self._heartbeat_interval)

    def _loop_error(self, loop, context) -> None:
        if 'out of system resource' in context.get('message', ''):
            # asyncio retries accept() a second later; say it once.
            if not self.app.fds_exhausted:
                LOG.error('Out of file descriptors: new connections are '
                          'refused until some close; raise the limit '
                          '(LimitNOFILE) if clients are legitimate.')
            self.app.fds_exhausted = True
            return
        loop.default_exception_handler(context)

    def _stop_on_loop(self) -> None:
        self.app.stopping()
        if self._front is not None:
            self._front.close()
        self._stopping.set()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving; requests still running get at most a second."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop_on_loop)
            self._thread.join(timeout)
        self.sock.close()
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)


def executor() -> concurrent.futures.ThreadPoolExecutor:
    """Threads for polls and encoding: a few, reused."""
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=4, thread_name_prefix='scrape')


def auth_executor() -> concurrent.futures.ThreadPoolExecutor:
    """The one thread for bcrypt checks: a flood of them holds one CPU
    at most, never the polls' threads.
    """
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=1, thread_name_prefix='auth')
