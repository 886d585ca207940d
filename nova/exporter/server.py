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
import gzip
import logging
import socket
import threading
import urllib.parse

from hypercorn import app_wrappers
from hypercorn import config as hyper_config
from hypercorn.asyncio import run as hyper_run
from prometheus_client import exposition

from nova.exporter import encoding

LOG = logging.getLogger(__name__)
# hypercorn's own lines ("Running on ... (CTRL + C to quit)") say less than
# the service's; its warnings and errors still come through.
_HYPERCORN_LOG = logging.getLogger(__name__ + '.hypercorn')
_HYPERCORN_LOG.setLevel(logging.WARNING)

BACKLOG = 1024
LANDING = b"""<!DOCTYPE html>
<html><head><title>nova-libvirt-exporter</title></head><body>
<h1>nova-libvirt-exporter</h1>
<p>Memory-balloon statistics of this host's libvirt guests, for Prometheus:
<a href="metrics">/metrics</a>.</p>
</body></html>
"""


def _wanted(families: list, names) -> list:
    """The families ``names`` (prometheus_client's ``name[]``) asks for,
    by family or sample name (``x``, or ``x_total`` of a counter even
    without samples)."""
    wanted = set(names)
    return [f for f in families if f.name in wanted or
            f.type == 'counter' and f.name + '_total' in wanted or
            any(s.name in wanted for s in f.samples)]


def _encode(families: list, encoder, names: tuple, zipped: bool) -> bytes:
    if names:
        families = _wanted(families, names)
    body = encoder(encoding.Families(families))
    # level 1: at 20 guests 0.13 ms for 2.9 KB, level 9 0.66 ms for 2.4 KB
    return gzip.compress(body, compresslevel=1) if zipped else body


HEALTHY = b'Healthy.\n'


class _Stopping(Exception):
    """The server stops: a request still waiting is answered 503."""


class MetricsApp:
    """ASGI app: /metrics, /, /-/healthy, and basic auth."""

    def __init__(self, poll, web_config, executor):
        #: poll() -> metric families (blocking; run on the executor)
        self._poll_fn = poll
        self._web = web_config
        self._executor = executor
        self._current: asyncio.Future | None = None
        # The encoded bodies of the latest poll's families, by (content
        # type, name filter, gzip): scrapes that share a poll share these.
        self._encoded_for = None
        self._encoded: dict = {}
        #: set when a connection failed to be accepted for want of fds
        self.fds_exhausted = False
        self._stopping: asyncio.Event | None = None

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

    async def _authorized(self, headers: dict) -> bool:
        if not self._web.users:
            return True
        value = headers.get(b'authorization', b'')
        scheme, _, encoded = value.partition(b' ')
        if scheme.lower() != b'basic':
            return False
        try:
            user, sep, password = base64.b64decode(
                encoded, validate=True).decode().partition(':')
        except (binascii.Error, UnicodeDecodeError):
            return False
        if not sep:
            return False
        loop = asyncio.get_running_loop()
        return await self._unless_stopping(loop.run_in_executor(
            self._executor, self._web.check_password, user, password))

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
        try:
            await self._serve(scope, send)
        except _Stopping:
            await self._respond(send, 503, b'Stopping.\n',
                                scope['method'] == 'HEAD')

    async def _serve(self, scope, send):
        self.fds_exhausted = False
        head = scope['method'] == 'HEAD'
        if scope['method'] not in ('GET', 'HEAD'):
            return await self._respond(send, 405, b'Use GET.\n', head,
                                       [(b'allow', b'GET, HEAD')])
        if scope['path'] == '/-/healthy':
            return await self._respond(send, 200, HEALTHY, head)
        headers = dict(scope['headers'])
        if not await self._authorized(headers):
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
        encoder, content_type = exposition.choose_encoder(accept)
        encoder = encoding.encoder_for(encoder)
        zipped = 'gzip' in headers.get(b'accept-encoding', b'').decode(
            'latin-1')
        body = await self._body(families, encoder, content_type, names,
                                zipped)
        extra = [(b'content-type', content_type.encode())]
        if zipped:
            extra.append((b'content-encoding', b'gzip'))
        await self._respond(send, 200, body, head, extra)

    async def _body(self, families, encoder, content_type: str,
                    names: tuple, zipped: bool) -> bytes:
        """The encoded body of ``families``, made once per poll for each
        format, name filter and compression: fifty scrapes sharing a poll
        cost one encoding, not fifty."""
        if self._encoded_for is not families:
            self._encoded_for, self._encoded = families, {}
        key = (content_type, names, zipped)
        body = self._encoded.get(key)
        if body is None:
            body = self._encoded[key] = asyncio.get_running_loop(
            ).run_in_executor(self._executor, _encode, families, encoder,
                              names, zipped)
        return await self._unless_stopping(asyncio.shield(body))

    @staticmethod
    async def _respond(send, status: int, body: bytes, head: bool,
                       headers: list | None = None):
        headers = list(headers or [(b'content-type',
                                    b'text/plain; charset=utf-8')])
        headers.append((b'content-length', str(len(body)).encode()))
        await send({'type': 'http.response.start', 'status': status,
                    'headers': headers})
        await send({'type': 'http.response.body',
                    'body': b'' if head else body})


class _Config(hyper_config.Config):
    """hypercorn's configuration, with our own TLS context."""

    def __init__(self, ssl_context):
        super().__init__()
        self._ssl_context = ssl_context

    @property
    def ssl_enabled(self) -> bool:
        return self._ssl_context is not None

    def create_ssl_context(self):
        return self._ssl_context


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
    """Serves ``app`` on ``sock`` from a thread of its own. ``heartbeat``,
    when given, is called from the event loop every ``heartbeat_interval``
    seconds: it stops being called when the loop stops answering."""

    def __init__(self, app: MetricsApp, sock: socket.socket,
                 ssl_context, client_timeout: float, heartbeat=None,
                 heartbeat_interval: float | None = None):
        self.app, self.sock = app, sock
        self._heartbeat = heartbeat
        self._heartbeat_interval = heartbeat_interval
        config = _Config(ssl_context)
        # A client must complete its TLS handshake, send its request, and
        # keep an idle connection open, each within client_timeout.
        config.ssl_handshake_timeout = client_timeout
        config.read_timeout = client_timeout
        config.keep_alive_timeout = client_timeout
        config.graceful_timeout = 1.0
        config.backlog = BACKLOG
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
        secure = [self.sock] if self._config.ssl_enabled else []
        insecure = [] if secure else [self.sock]
        sockets = hyper_config.Sockets(secure, insecure, [])
        if self._heartbeat is not None and self._heartbeat_interval:
            self._loop.create_task(self._beat())
        try:
            self._loop.run_until_complete(hyper_run.worker_serve(
                app_wrappers.ASGIWrapper(self.app), self._config,
                sockets=sockets,
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

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving; requests still running get at most a second."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self.app.stopping)
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(timeout)
        self.sock.close()


def executor() -> concurrent.futures.ThreadPoolExecutor:
    """Threads for polls, password checks and encoding: a few, reused."""
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=4, thread_name_prefix='scrape')
