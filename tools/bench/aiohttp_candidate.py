#!/usr/bin/env python3
"""A candidate for the exporter's web server: aiohttp, measured by
tools/bench/exporter_attacks.py (``--only aiohttp``) beside ours and
node_exporter under every attack.

The exporter's own parts (the toolkit's handler and the app, in front of
the same read-only collector) served by aiohttp's low-level server instead
of ours, with our bounds expressed as far as aiohttp's settings allow: the
TLS context of the web configuration, a 10 s handshake timeout (asyncio's
``ssl_handshake_timeout``; aiohttp's own site keeps the 60 s default), a
10 s keep-alive timeout, heads of 16 KB, and a cap on connections (all but
64 of the file descriptors) refusing new ones past it (aiohttp has none).
Nothing of it is the product: it runs here only to be compared.

    .venv/bin/python tools/bench/aiohttp_candidate.py --config-file F
"""

import asyncio
import concurrent.futures
import os
import resource
import signal
import socket
import sys

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, TOP)

from aiohttp import web  # noqa: E402

from nova import config  # noqa: E402
import nova.conf  # noqa: E402
from nova.exporter import app  # noqa: E402
from nova.exporter import service  # noqa: E402
from nova.exporter.web import config as web_config  # noqa: E402
from nova.exporter.web import handler as web_handler  # noqa: E402
from nova.exporter.web import messages  # noqa: E402
from nova.exporter.web import tls as web_tls  # noqa: E402
from nova.virt.libvirt import driver as libvirt_driver  # noqa: E402

CONF = nova.conf.CONF


def main() -> int:
    config.parse_args(sys.argv[1:], prog='aiohttp-candidate')
    opts = CONF.exporter
    settings = web_config.load(opts.web_config_file)
    tls = None if settings.tls is None else web_tls.ServerTLS.build(
        settings.tls, opts.web_config_file)
    collector = service.PrometheusCollector(
        libvirt_driver.LibvirtDriver(read_only=True)
        .memory_stats_collector())
    polls = concurrent.futures.ThreadPoolExecutor(4)
    checks = concurrent.futures.ThreadPoolExecutor(1)
    metrics_app = app.MetricsApp(collector.collect, polls, b'<html></html>')
    gate = web_handler.WebHandler(metrics_app, lambda: settings,
                                  web_handler.Passwords(checks))

    async def handle(request: web.BaseRequest) -> web.Response:
        ours = messages.Request(
            request.method, request.path, request.query_string,
            [(k.lower().encode('latin-1'), v.encode('latin-1'))
             for k, v in request.headers.items()], request.remote or '')
        answer = await gate(ours)
        return web.Response(status=answer.status, body=answer.body,
                            headers={k.decode(): v.decode()
                                     for k, v in answer.headers})

    async def serve():
        server = web.Server(handle, keepalive_timeout=10.0,
                            max_line_size=16384, max_field_size=16384)
        most = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 64
        open_now = [0]

        class Capped(asyncio.Protocol):
            """aiohttp's protocol for one connection, refused past the
            cap.
            """

            def __init__(self):
                self.inner, self.counted = server(), False

            def connection_made(self, transport):
                if open_now[0] >= most:
                    transport.abort()
                    return
                open_now[0] += 1
                self.counted = True
                self.inner.connection_made(transport)

            def connection_lost(self, exc):
                if self.counted:
                    open_now[0] -= 1
                    self.inner.connection_lost(exc)

            def data_received(self, data):
                self.inner.data_received(data)

            def eof_received(self):
                return self.inner.eof_received()

            def pause_writing(self):
                self.inner.pause_writing()

            def resume_writing(self):
                self.inner.resume_writing()
        capped = Capped
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((opts.listen_address, opts.listen_port))
        loop = asyncio.get_running_loop()
        listener = await loop.create_server(
            capped, sock=sock, backlog=1024,
            ssl=None if tls is None else tls.context,
            ssl_handshake_timeout=None if tls is None else 10.0)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        print(f'Serving http://{opts.listen_address}:{opts.listen_port}'
              '/metrics', flush=True)
        await stop.wait()
        listener.close()
        await server.shutdown(1.0)
        print('Stopped.', flush=True)
    asyncio.run(serve())
    os._exit(0)


if __name__ == '__main__':
    sys.exit(main())
