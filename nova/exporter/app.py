"""The exporter's application: what each path answers.

``/metrics`` (GET, or HEAD): one poll's metric families, encoded as the
request negotiated (nova.exporter.encoding), ``?name[]=`` keeping the named
families; ``/``: a landing page; ``/-/healthy``: a liveness answer that
never polls libvirt; 404 elsewhere, 405 for other methods.

A poll runs on a worker thread; scrapes that arrive while it runs share its
figures, and scrapes of one poll share each encoded body. Once the server
is stopping, a scrape still waiting is answered 503 at once. Who may ask
is decided before a request gets here (nova.exporter.web.handler); how it
arrived is nova.exporter.web.server's business. Nothing here talks to
libvirt or reads nova.conf.
"""

import asyncio
import html
import urllib.parse

from nova.exporter import encoding
from nova.exporter.web import handler as web_handler
from nova.exporter.web import messages

HEALTHY = b'Healthy.\n'
# A scrape that reaches a stopping exporter (a restart's last second) is
# answered from a poll that ended at most this long ago, else 503.
STOPPING_AGE = 10.0
# Encoded bodies kept for a poll: every Format and name filter a few
# scrapers use (Formats are a few dozen at most; filters, any).
MAX_BODIES = 16


class _Stopping(Exception):
    """The server stops: a request still waiting is answered 503."""


class MetricsApp:
    """Routes a Request to its Response. ``poll()`` gives metric families
    (blocking: run on ``executor``); ``landing`` is the landing page's
    HTML.
    """

    def __init__(self, poll, executor, landing: bytes):
        self._poll_fn = poll
        self._executor = executor
        self._landing = landing
        self._current: asyncio.Future | None = None
        self._polled_at = float('-inf')  # when the last poll ended
        # The encoded bodies of the latest poll's families, by (format,
        # name filter): scrapes that share a poll share these.
        self._encoded_for = None
        self._encoded: dict = {}
        # The label sets the last body wrote, for the next (encoding).
        self._label_texts: dict = {}
        self._stopping: asyncio.Event | None = None
        # The wake-ups of scrapes waiting for a poll or a body.
        self._stop_waiters: set = set()

    def stopping(self) -> None:
        """Answer 503 to requests still waiting (call on the loop)."""
        self._stop_event().set()
        for wake in list(self._stop_waiters):
            wake()

    def _stop_event(self) -> asyncio.Event:
        if self._stopping is None:
            self._stopping = asyncio.Event()
        return self._stopping

    async def _unless_stopping(self, future):
        """``future``'s result, or _Stopping once the server stops (a
        result already there is given even then).
        """
        stop = self._stop_event()
        if future.done():
            return future.result()
        if stop.is_set():
            raise _Stopping()
        if not future.done():
            # one waiter woken by whichever comes first (cheaper, for each
            # of a burst's scrapes, than asyncio.wait and a task)
            waiter = asyncio.get_running_loop().create_future()

            def wake(_=None):
                if not waiter.done():
                    waiter.set_result(None)
            future.add_done_callback(wake)
            stop_waiters = self._stop_waiters
            stop_waiters.add(wake)
            try:
                await waiter
            finally:
                future.remove_done_callback(wake)
                stop_waiters.discard(wake)
        if not future.done():
            raise _Stopping()
        return future.result()

    async def __call__(self, request) -> messages.Response:
        if request.method not in ('GET', 'HEAD'):
            return messages.text(405, b'Use GET.\n',
                                 [(b'allow', b'GET, HEAD')])
        answer = ROUTES.get(request.path)
        if answer is None:
            return messages.text(404, b'Not found: see /metrics.\n')
        try:
            return await answer(self, request)
        except _Stopping:
            return messages.text(503, b'Stopping.\n')

    async def healthy(self, request) -> messages.Response:
        """Alive: never polls libvirt."""
        return messages.text(200, HEALTHY)

    async def landing(self, request) -> messages.Response:
        return messages.Response(200, self._landing, [
            (b'content-type', b'text/html; charset=utf-8')])

    async def metrics(self, request) -> messages.Response:
        """A scrape: this poll's families (``_poll``: the poll function
        given, PrometheusCollector.collect in the service), encoded as the
        request negotiated (``_body``: encoding.encode).
        """
        query = urllib.parse.parse_qs(request.query)
        names = query.get('name[]', ())
        fmt = encoding.negotiate(
            (request.header(b'accept') or b'').decode('latin-1'),
            (request.header(b'accept-encoding') or b'').decode('latin-1'))
        families = await self._poll()
        if names:
            # the families asked for, by their own names: any spelling of
            # a filter that keeps the same families shares one body
            names = tuple(f.name for f in encoding.wanted(families, names))
            names = names or ('',)
        body = await self._body(families, fmt, tuple(names))
        headers = [(b'content-type', fmt.content_type.encode())]
        if fmt.zipped:
            headers.append((b'content-encoding', b'gzip'))
        return messages.Response(200, body, headers)

    async def _poll(self):
        """This poll's families: the one running, or a new one. Once the
        server stops, no poll starts: a scrape that came in just before is
        answered from the last poll if it ended under STOPPING_AGE seconds
        ago (it would otherwise be refused during a restart), else 503.
        """
        loop = asyncio.get_running_loop()
        if self._stop_event().is_set():
            last = self._current
            if last is None or not last.done() or last.exception() or \
                    loop.time() - self._polled_at > STOPPING_AGE:
                raise _Stopping()
            return last.result()
        if self._current is None or self._current.done():
            self._current = current = loop.run_in_executor(
                self._executor, self._poll_fn)
            current.add_done_callback(self._polled)
        return await self._unless_stopping(asyncio.shield(self._current))

    def _polled(self, _future) -> None:
        self._polled_at = asyncio.get_running_loop().time()

    async def _body(self, families, fmt, names: tuple) -> bytes:
        """``families`` encoded, once per poll for each Format and set of
        families: fifty scrapes sharing a poll cost one encoding, and so
        do any number of spellings of one Accept header. The bodies of a
        poll kept are at most MAX_BODIES (the latest asked for).
        """
        if self._encoded_for is not families:
            self._encoded_for, self._encoded = families, {}
        key = (fmt, names)
        body = self._encoded.pop(key, None)
        if body is None:
            body = asyncio.get_running_loop().run_in_executor(
                self._executor, encoding.encode, families, fmt, names,
                self._label_texts)
            if len(self._encoded) >= MAX_BODIES:
                del self._encoded[next(iter(self._encoded))]
        self._encoded[key] = body  # the newest
        return await self._unless_stopping(asyncio.shield(body))


# The paths and what answers each (GET and HEAD; 405 for other methods,
# 404 for other paths).
ROUTES = {
    '/metrics': MetricsApp.metrics,
    '/': MetricsApp.landing,
    web_handler.HEALTHY_PATH: MetricsApp.healthy,
}


def landing_page(name: str, description: str, version: str,
                 links: list[tuple[str, str]]) -> bytes:
    """The landing page, with what the toolkit's LandingConfig shows: the
    name, a description, the version and links.
    """
    items = ''.join(f'<li><a href="{html.escape(href.lstrip("/"))}">'
                    f'{html.escape(text)}</a></li>\n'
                    for href, text in links)
    return (f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<title>{html.escape(name)}</title></head>
<body>
<h1>{html.escape(name)}</h1>
<p>{html.escape(description)}</p>
<p>Version: {html.escape(version)}</p>
<ul>
{items}</ul>
</body></html>
""").encode()
