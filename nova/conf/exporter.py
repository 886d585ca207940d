"""The [exporter] option group: the nova-libvirt-exporter service.

Read by the exporter service only (nova/exporter/service.py).
"""

from oslo_config import cfg

exporter_group = cfg.OptGroup(
    'exporter',
    title='Prometheus exporter options',
    help="""
Options of ``nova-libvirt-exporter``, which serves every guest's memory
statistics and their state on HTTP ``/metrics`` for Prometheus.
""")

# Not 9177: the port of the established libvirt exporters, which may run on
# the same host.
DEFAULT_PORT = 9179

exporter_opts = [
    cfg.HostAddressOpt('listen_address',
                       default='127.0.0.1',
                       help="""
Address the exporter listens on.

The default exposes nothing beyond this host. Set the address of the
interface your Prometheus server reaches (or ``0.0.0.0`` or ``::`` for all),
and protect it: guest names and their memory use are visible to whoever can
connect. Consider ``web_config_file``.

Related options:

* ``listen_port``
"""),
    cfg.PortOpt('listen_port',
                default=DEFAULT_PORT,
                help=f"""
TCP port the exporter listens on.

The default, {DEFAULT_PORT}, is not 9177, the port of the established
libvirt exporters, so that both can run on one host. The exporter refuses to
start, in one line, when the port is taken.
"""),
    cfg.StrOpt('web_config_file',
               help="""
Prometheus web configuration file: TLS, client certificates, basic auth.

The format of the Prometheus exporter toolkit's ``web-config.yml``, which
other exporters read: ``tls_server_config`` (``cert_file``, ``key_file``,
``client_ca_file``, ``client_auth_type``: ``NoClientCert``,
``VerifyClientCertIfGiven`` or ``RequireAndVerifyClientCert``,
``min_version``, ``max_version``) and ``basic_auth_users`` (user name to
bcrypt hash). Relative paths are relative to the file. Read at start, where
an unknown or unusable setting stops the exporter in one line, and again
for new connections whenever it (or a file it names) changed, as the
toolkit does; a file that became unusable keeps the last good one, with a
warning. The exporter serves HTTP/1.1 only. Unset (the default): plain
HTTP, open to whoever can connect.

Related options:

* ``listen_address``
"""),
    cfg.IntOpt('client_timeout',
               default=10,
               min=1,
               max=3600,
               help="""
Seconds a client has to complete its TLS handshake and send its request,
and that an idle connection is kept open.

A client slower than this (or one that connects and sends nothing) is cut,
so it cannot hold the exporter up; no thread is spent on a waiting
connection.
"""),
    cfg.StrOpt('tls_cert_file',
               deprecated_for_removal=True,
               deprecated_reason='Use web_config_file, whose '
                                 'tls_server_config also takes client '
                                 'certificates and a minimum TLS version.',
               help="""
PEM certificate to serve ``/metrics`` over HTTPS.

Both this and ``tls_key_file`` must be set for HTTPS; with neither, the
exporter serves plain HTTP.

Related options:

* ``tls_key_file``
* ``web_config_file``
"""),
    cfg.StrOpt('tls_key_file',
               deprecated_for_removal=True,
               deprecated_reason='Use web_config_file.',
               help="""
PEM private key of ``tls_cert_file``.

Related options:

* ``tls_cert_file``
"""),
    cfg.BoolOpt('apply_stats_period',
                default=False,
                mutable=True,
                deprecated_name='reconcile_period',
                # Not deprecated_for_removal: oslo.config would say it in a
                # line of its own beside the exporter's, which says what
                # replaces it.
                help="""
Deprecated, no longer changes anything: the exporter reads only.

It used to bring every guest to ``[libvirt] mem_stats_period_seconds`` at
start and on SIGHUP. The exporter's libvirt connection is now read-only,
and ``nova-libvirt reconcile`` runs as ``nova-libvirt-reconcile.service``,
started by ``nova-libvirt-reconcile.path`` when the configuration changes
and by ``nova-libvirt-reconcile.timer`` (``tools/install-service`` enables
both). When true, the exporter says so in one line at start.

Related options:

* ``[libvirt] mem_stats_period_seconds``
"""),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(exporter_group)
    conf.register_opts(exporter_opts, group=exporter_group)


def list_opts() -> dict:
    return {exporter_group: exporter_opts}
