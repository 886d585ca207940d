"""The nova-libvirt-exporter process: HTTP /metrics, signals, reload.

An OpenStack-style service: oslo.config (``--config-file``,
``--config-dir``), oslo.log (``--log-file``, ``--debug``,
``--use-journal``), SIGTERM and SIGINT stop it, SIGHUP re-reads the
configuration files (options declared ``mutable``) and logs what changed.
Here the parts are put together, as the exporter toolkit layers them: the
HTTP server (nova.exporter.web.server: connections, TLS), the toolkit's
handler around the app (nova.exporter.web.handler: rate limit, headers,
basic auth), the app (nova.exporter.app: routes, encoding), and the web
configuration in force (nova.exporter.web.watch). Every scrape is served
from one poll of one long-lived MemoryStatsCollector, turned into fresh
metric families. Nothing is global: the collector and the server belong to
one ExporterService.

The route of a scrape, from the socket to the encoder (``start`` wires it,
in this order)::

    web.server.HTTPServer         listening, admission, the bounds
      -> web.connection            one client: TLS, h11 (sans-IO)
      -> web.handler.WebHandler    rate limit, basic auth, headers
      -> app.MetricsApp            app.ROUTES: /metrics -> metrics()
      -> PrometheusCollector.collect   a poll (MemoryStatsCollector),
                                       metrics.families
      -> encoding.encode            the body, in the format negotiated

The service is given its parts by its entry point (nova.cmd.exporter): a
collector of a read-only libvirt connection, the settings as plain values
and a function that re-reads them. It only reads: changing guests' periods
is nova-libvirt-reconcile's job (a short-lived unit of its own, with the
write access the exporter never has). It must not import nova.conf or the
driver, nor read the configuration itself.
"""

import concurrent.futures
import dataclasses
import errno
import ipaddress
import signal
import socket
import threading
import time

from oslo_log import log as logging
from prometheus_client import registry as prom_registry

from nova import exception
from nova.exporter import app
from nova.exporter import metrics
from nova.exporter import notify
from nova.exporter.web import config as web_config
from nova.exporter.web import handler as web_handler
from nova.exporter.web import server as web_server
from nova.exporter.web import tls as web_tls
from nova.exporter.web import watch

LOG = logging.getLogger(__name__)
PROG = 'nova-libvirt-exporter'
DESCRIPTION = ("Memory-balloon statistics of this host's libvirt guests, "
               'with their statistics period and why any figure is '
               'missing, for Prometheus.')
LINKS = [('/metrics', 'Metrics'), ('/-/healthy', 'Health')]
# bcrypt's cost: each step doubles a check's CPU time (cost 10: about 60 ms
# here). Above this, a start logs what a check costs.
SLOW_COST = 12


class ExporterFailed(exception.NovaException):
    msg_fmt = '%(reason)s'


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the service needs of its configuration, as plain values
    ([exporter] options, and [libvirt] mem_stats_poll_timeout and
    mem_stats_start_grace_seconds, mem_stats_keep_unresponsive_periods).
    """

    listen_address: str = '127.0.0.1'
    listen_port: int = 9179
    client_timeout: float = 10.0
    web_config_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    apply_stats_period: bool = False
    poll_timeout: float = 5.0
    start_grace: float = 60
    keep_periods: int = 3


class PrometheusCollector(prom_registry.Collector):
    """The prometheus_client collector: one poll of libvirt per call (a
    MemoryStatsCollector's), turned into metric families. Scrapes that
    arrive while a poll runs share it: that is the app's job
    (nova.exporter.app.MetricsApp); the lock here only keeps two
    callers off the collector's cache at once.
    """

    def __init__(self, collector, version: str = ''):
        self._collector = collector
        self._build_info = metrics.build_info(version)
        self._lock = threading.Lock()
        self._last_error = None
        # What each guest's series reuse from one scrape to the next
        # (metrics.families).
        self._kept: dict = {}

    def collect(self):
        with self._lock:
            return self._poll()

    def _poll(self) -> list:
        start = time.monotonic()
        failed = None
        try:
            rows = self._collector.collect()
        except exception.NovaException as e:
            rows, failed = [], str(e)
        # logged outside the except: oslo.log would add the exception's
        # class to the line
        if failed is None and self._last_error is not None:
            LOG.info('libvirt answers again.')
        elif failed is not None and self._last_error is None:
            # a change is logged, not a flood
            LOG.warning('Scrapes have no guest figures until libvirt '
                        'answers again: %s', failed)
        self._last_error = failed
        up = failed is None
        found = metrics.families(rows, self._kept)
        return found + metrics.host_families(
            up, time.monotonic() - start) + [self._build_info]


class ExporterService:
    """The HTTP server and its collector.

    ``collector``: a memstats.MemoryStatsCollector (collect(), forget(),
    ``timeout``); ``settings``: the Settings; ``uri``: libvirt's, for the
    log; ``reread()``: re-reads the configuration files, returning the new
    Settings, the mutable options that changed and the others that changed
    in the files (applied at a restart), each as (group, option, value,
    was), or raising InvalidConfig.
    """

    def __init__(self, collector, settings: Settings, uri: str,
                 reread=None, version: str = ''):
        self.collector = collector
        self.settings = settings
        self.uri = uri
        self._reread = reread
        self.version = version
        self.exporter = PrometheusCollector(self.collector, version)
        self._httpd: web_server.HTTPServer | None = None
        self._web: watch.Current | None = None
        self._app: app.MetricsApp | None = None
        self._executor = None

    @property
    def port(self) -> int:
        return self._httpd.port

    @property
    def httpd(self) -> 'web_server.HTTPServer | None':
        return self._httpd

    def _load_web(self) -> tuple:
        """(WebConfig, ServerTLS or None): [exporter] web_config_file,
        else the deprecated tls_cert_file/tls_key_file, else plain HTTP.
        WebConfigError or ExporterFailed in one line.
        """
        opts = self.settings
        tls_files = (opts.tls_cert_file, opts.tls_key_file)
        if opts.web_config_file:
            if any(tls_files):
                raise ExporterFailed(
                    reason='set [exporter] web_config_file or '
                           'tls_cert_file and tls_key_file, not both: '
                           'move the certificate into the web '
                           'configuration file.')
            try:
                config = web_config.load(opts.web_config_file)
                tls = None if config.tls is None else \
                    web_tls.ServerTLS.build(config.tls,
                                            opts.web_config_file)
            except web_config.WebConfigError as e:
                raise ExporterFailed(reason=f'[exporter] web_config_file '
                                            f'{e}') from None
            return config, tls
        if bool(opts.tls_cert_file) != bool(opts.tls_key_file):
            raise ExporterFailed(
                reason='set both [exporter] tls_cert_file and tls_key_file '
                       'for HTTPS, or neither for HTTP.')
        if opts.tls_cert_file:
            try:
                return web_tls.from_cert_files(*tls_files)
            except (OSError, web_config.WebConfigError) as e:
                raise ExporterFailed(reason=(
                    f'cannot use [exporter] tls_cert_file and tls_key_file '
                    f'({getattr(e, "strerror", None) or e}): set them to a '
                    'PEM certificate and its key that this user may '
                    'read.')) from None
        return web_config.WebConfig(), None

    def _sockets(self) -> list:
        """The listening sockets: systemd's (socket activation), else one
        of our own on [exporter] listen_address and listen_port.
        """
        opts = self.settings
        where = f'{opts.listen_address}:{opts.listen_port}'
        given = notify.listen_sockets()
        if given:
            held = [_address(sock) for sock in given]
            LOG.info('Listening on the socket systemd holds (socket '
                     'activation): %s.', ', '.join(held))
            configured = _address_of(opts.listen_address, opts.listen_port)
            if configured not in held:
                LOG.warning('[exporter] listen_address and listen_port say '
                            '%s, but systemd holds %s for the exporter '
                            '(nova-libvirt-exporter.socket), which is '
                            'served: run tools/install-service again to '
                            'move the socket.', configured, ', '.join(held))
            return given
        try:
            return [web_server.listen(opts.listen_address,
                                      opts.listen_port)]
        except OSError as e:
            raise ExporterFailed(reason=_listen_error(where, e)) from None

    def start(self) -> None:
        opts = self.settings
        self._web = watch.Current(self._load_web)
        web = self._web.config
        for warning in web.warnings:
            LOG.warning('[exporter] web_config_file: %s', warning)
        _warn_costs(web)
        sockets = self._sockets()
        self._executor = executor()
        self._auth_executor = auth_executor()
        # the route (see the module's docstring), from the inside out
        self._app = app.MetricsApp(
            self.exporter.collect, self._executor,
            app.landing_page(PROG, DESCRIPTION, self.version, LINKS))
        gate = web_handler.WebHandler(
            self._app, lambda: self._web.config,
            web_handler.Passwords(self._auth_executor))
        # systemd's watchdog is pinged from the HTTP event loop: it is
        # restarted when that loop stops answering.
        self._httpd = web_server.HTTPServer(
            gate, sockets, opts.client_timeout,
            tls=self._web.for_connection,
            heartbeat=lambda: notify.notify('WATCHDOG=1'),
            heartbeat_interval=notify.watchdog_interval())
        self._httpd.start()
        scheme = 'https' if web.tls else 'http'
        where = ', '.join(_address(s) for s in sockets)
        LOG.info('Serving %s://%s/metrics for %s (%s; HTTP/1.1)', scheme,
                 where, self.uri, web.summary())
        _warn_exposed(sockets, web)
        # It listens: systemd may count it started (Type=notify).
        notify.notify('READY=1', f'STATUS=Serving on {where}')
        _warn_apply(opts)

    def stop(self) -> None:
        """Stop serving within about two seconds, whatever clients or
        libvirt do.
        """
        notify.notify('STOPPING=1')
        if self._httpd is not None:
            self._httpd.loop.call_soon_threadsafe(self._app.stopping)
            self._httpd.stop()
            self._httpd = None
        if self._executor is not None:
            # Polls stuck in libvirt are left to finish alone.
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._auth_executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def reload(self) -> None:
        """Re-read the configuration files (SIGHUP); log what changed.

        A configuration with a bad value is refused whole, in one logged
        line, and the service goes on with what it had.
        """
        notify.notify('RELOADING=1')
        try:
            self._reload()
        finally:
            notify.notify('READY=1')

    def _reload(self) -> None:
        if self._reread is None:
            return
        refused = None
        try:
            self.settings, changed, waiting = self._reread()
        except exception.InvalidConfig as e:
            refused = str(e)
        if refused is not None:  # logged outside the except (oslo.log)
            LOG.error('Configuration not reloaded, the previous one stays: '
                      '%s', refused)
            return
        web_changed = self._reload_web()
        refused = self._web is not None and self._web.refusal is not None
        if not changed and not web_changed and not refused and not waiting:
            LOG.info('Configuration re-read; nothing changed.')
        for group, name, value, was in changed:
            LOG.info('Configuration changed: [%s] %s = %s (was %s)', group,
                     name, value, was)
        for group, name, value, was in waiting:
            LOG.warning('Configuration changed in the files: [%s] %s = %s '
                        '(running with %s): it applies at the next restart.',
                        group, name, value, was)
        self.collector.timeout = self.settings.poll_timeout
        self.collector.start_grace = self.settings.start_grace
        self.collector.keep_periods = self.settings.keep_periods
        _warn_apply(self.settings)

    def _reload_web(self) -> bool:
        """Read the web configuration again (nova.exporter.web.watch):
        new connections and requests use it. Whether what applies changed.
        """
        if self._httpd is None:
            return False
        changed = self._web.reload(asked=True)
        if changed:
            _warn_costs(self._web.config)
        return changed


def _listen_error(where: str, e: OSError) -> str:
    """Why the exporter cannot listen on ``where``, and what to do."""
    if e.errno == errno.EADDRINUSE:
        return (f'{where} is in use by another process: stop it or set '
                '[exporter] listen_port.')
    if e.errno == errno.EADDRNOTAVAIL:
        return (f'cannot listen on {where}: no interface of this host has '
                'that address: set [exporter] listen_address to one of '
                'its addresses (or 0.0.0.0 for all).')
    if e.errno == errno.EACCES:
        return (f'cannot listen on {where}: a port below 1024 needs root '
                '(or CAP_NET_BIND_SERVICE): set [exporter] listen_port to '
                '1024 or above.')
    return (f'cannot listen on {where}: {e.strerror or e}: check [exporter] '
            'listen_address and listen_port.')


def exposed(sockets, tls: bool, passwords: bool) -> str | None:
    """The WARNING for serving beyond this host without TLS or passwords
    (as the toolkit says "TLS is disabled"), or None.
    """
    beyond = [_address(sock) for sock in sockets
              if not _loopback(sock.getsockname()[0])]
    missing = [what for what, has in (('TLS', tls),
                                      ('basic_auth_users', passwords))
               if not has]
    if not beyond or not missing:
        return None
    return (f'Listening on {", ".join(beyond)} without '
            f'{" or ".join(missing)}: anyone who can reach this host reads '
            'every guest\'s figures' + (' in clear' if not tls else '') +
            '; set [exporter] web_config_file (tls_server_config, '
            'basic_auth_users), or listen_address = 127.0.0.1.')


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split('%')[0]).is_loopback
    except ValueError:
        return False  # a path (AF_UNIX): not beyond this host either


def _warn_exposed(sockets, web) -> None:
    said = exposed([s for s in sockets if s.family != socket.AF_UNIX],
                   web.tls is not None, bool(web.users))
    if said is not None:
        LOG.warning('%s', said)


def _warn_apply(settings: Settings) -> None:
    if settings.apply_stats_period:
        LOG.warning('[exporter] apply_stats_period is true, but the exporter '
                    'only reads now: nova-libvirt-reconcile.path and .timer '
                    '(tools/install-service enables them) bring the guests '
                    'to their period; remove the option.')


def _address(sock) -> str:
    host, port = sock.getsockname()[:2]
    return _address_of(host, port)


def _address_of(host: str, port: int) -> str:
    return f'[{host}]:{port}' if ':' in host else f'{host}:{port}'


def _warn_costs(web) -> None:
    """One line per user whose hash is slow to check, with what a check
    costs: it is accepted, as the toolkit accepts it.
    """
    for cost in sorted(set(web.costs.values())):
        if cost > SLOW_COST:
            LOG.warning('[exporter] web_config_file: a user\'s bcrypt hash '
                        'has cost %d: each check of a password not yet '
                        'verified takes about %s of CPU (cost 10: 0.06 s); '
                        'verified credentials are answered from memory. '
                        '%s makes a cheaper one.',
                        cost, _seconds(0.06 * 2 ** (cost - 10)),
                        web_config.HTPASSWD)


def _seconds(value: float) -> str:
    return f'{value:.0f} s' if value >= 10 else f'{value:.1f} s'


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


def run(service: ExporterService) -> int:
    """Serve until SIGTERM or SIGINT; SIGHUP reloads, on a thread of its
    own, so that however long reading takes it never delays a stop.
    """
    stop, hup = threading.Event(), threading.Event()
    reloading = None

    def on_stop(signum, frame):
        LOG.info('%s received: stopping.', signal.Signals(signum).name)
        stop.set()

    def on_hup(signum, frame):
        hup.set()

    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, on_stop),
                signal.SIGINT: signal.signal(signal.SIGINT, on_stop),
                signal.SIGHUP: signal.signal(signal.SIGHUP, on_hup)}
    try:
        service.start()
        while not stop.is_set():
            if hup.wait(0.2) and (reloading is None or
                                  not reloading.is_alive()):
                hup.clear()
                LOG.info('SIGHUP received: re-reading the configuration.')
                reloading = threading.Thread(target=service.reload,
                                             name='reload', daemon=True)
                reloading.start()
    finally:
        service.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    LOG.info('Stopped.')
    return 0
