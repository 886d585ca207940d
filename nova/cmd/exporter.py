"""The ``nova-libvirt-exporter`` console script: load, log, assemble,
serve.

A bad configuration, or a port already taken, ends in one line on stderr
and exit status 2 or 1. Here the configuration is read and the service
assembled from its parts (``build``): the collector of a read-only
driver, the settings as plain values, and how to re-read them; serving is
nova.exporter.service's job. Once it stopped serving the process exits
at once: nothing waits for a libvirt call still stuck in a worker thread.
"""

import logging as std_logging
import os
import sys

from oslo_config import cfg
from oslo_config import types
from oslo_log import log as logging

from nova import config
from nova import exception
from nova import hints
from nova import version
import nova.conf
from nova.exporter import service
from nova.virt.libvirt import driver as libvirt_driver

CONF = nova.conf.CONF

DESCRIPTION = """\
Serve every libvirt guest's memory-balloon statistics, their statistics
period and why any figure is missing, for Prometheus, on
http://[exporter] listen_address:listen_port/metrics (default
127.0.0.1:9179; HTTPS and basic auth with [exporter] web_config_file).
SIGHUP re-reads the configuration, SIGTERM stops. Documentation:
doc/source/admin/exporter.rst in the source tree."""


class _NoOsloChangeLines(std_logging.Filter):
    """oslo.config logs each mutated option with its old value in the
    files ("changed from [None]" for an option left at its default); the
    service logs the values in effect instead, once.
    """

    def filter(self, record) -> bool:
        # and its "Ignoring change to immutable option": the service says
        # which changes wait for a restart, with their values
        return not str(record.msg).startswith(
            ('Option %(group)s', 'Ignoring change to immutable option'))


_NO_OSLO_CHANGE_LINES = _NoOsloChangeLines()


#: Command-line flags for what is asked most on a first run; they win over
#: [exporter] listen_address and listen_port. Read as strings and checked
#: by ``check_flags`` (oslo.config's own check of a command-line value
#: exits 1 naming the option's dest, --cli_listen_port).
CLI_OPTS = [
    cfg.StrOpt('listen-address', dest='cli_listen_address',
               metavar='ADDRESS',
               help='Address to listen on (overrides [exporter] '
                    'listen_address; default 127.0.0.1).'),
    cfg.StrOpt('listen-port', dest='cli_listen_port', metavar='PORT',
               help='TCP port to listen on (overrides [exporter] '
                    'listen_port; default 9179).'),
]
#: dest: (the flag, its type, what it takes)
CLI_TYPES = {
    'cli_listen_address': ('--listen-address', types.HostAddress(),
                           'expected an IPv4 or IPv6 address or a host '
                           'name'),
    'cli_listen_port': ('--listen-port', types.Port(),
                        'expected an integer from 0 to 65535'),
}


def check_flags(conf) -> dict:
    """The command-line flags' values, converted ({dest: value}, None
    where not given); InvalidConfig in one line for a bad one, as a bad
    value in nova.conf is.
    """
    found = {}
    for dest, (flag, kind, expected) in CLI_TYPES.items():
        value = getattr(conf, dest, None)
        if value is not None:
            try:
                value = kind(value)
            except ValueError:
                raise exception.InvalidConfig(
                    f'{flag} {value} is not valid: {expected}.') from None
        found[dest] = value
    return found


def settings(conf) -> service.Settings:
    """The service's settings from the loaded configuration."""
    opts = conf.exporter
    # (not registered where the service is built without its command line)
    flags = check_flags(conf)
    address = flags['cli_listen_address']
    port = flags['cli_listen_port']
    return service.Settings(
        listen_address=opts.listen_address if address is None else address,
        listen_port=opts.listen_port if port is None else port,
        client_timeout=opts.client_timeout,
        web_config_file=opts.web_config_file,
        tls_cert_file=opts.tls_cert_file, tls_key_file=opts.tls_key_file,
        apply_stats_period=opts.apply_stats_period,
        poll_timeout=conf.libvirt.mem_stats_poll_timeout,
        start_grace=conf.libvirt.mem_stats_start_grace_seconds,
        keep_periods=conf.libvirt.mem_stats_keep_unresponsive_periods)


def _values(conf, mutable: bool) -> dict:
    """{(group, option): value} of every option that is (or is not)
    mutable.
    """
    return {(group, opt.dest): namespace[opt.dest]
            for group, opt, namespace in config.nova_options(conf)
            if bool(opt.mutable) == mutable}


def _differ(after: dict, before: dict) -> list:
    return [(group, name, after[(group, name)], before[(group, name)])
            for group, name in after
            if after[(group, name)] != before[(group, name)]]


def rereader(conf):
    """The service's reread(): check the files whole (a bad value keeps
    the configuration running), then apply the mutable options; says which
    others changed in the files and wait for a restart.
    """
    def reread():
        files = config.check_files(conf, service.PROG)
        before = _values(conf, mutable=True)
        conf.mutate_config_files()
        changed = _differ(_values(conf, mutable=True), before)
        waiting = _differ(_values(files, mutable=False),
                          _values(conf, mutable=False))
        return settings(conf), changed, waiting
    return reread


def build(conf, driver=None) -> service.ExporterService:
    """The service for the loaded configuration: a collector of
    ``driver``'s host (default: a new read-only LibvirtDriver; no setting
    makes it write), the settings and their reread.
    """
    oslo_cfg = std_logging.getLogger('oslo_config.cfg')
    if _NO_OSLO_CHANGE_LINES not in oslo_cfg.filters:
        oslo_cfg.addFilter(_NO_OSLO_CHANGE_LINES)
    driver = driver or libvirt_driver.LibvirtDriver(read_only=True)
    if not driver.read_only:
        raise ValueError('the exporter only reads: give it a read-only '
                         'LibvirtDriver')

    collector = driver.memory_stats_collector()
    uri, why = driver.connection
    return service.ExporterService(
        collector, settings(conf), f'{uri} ({why})', rereader(conf),
        version.version_string())


# How long a thread keeps the GIL while another waits for it (Python's
# default: 5 ms). The HTTP event loop and the threads of a poll take turns:
# at 5 ms, a burst of scrapes kept a poll's thread waiting for the GIL after
# each libvirt call, and 50 scrapes at once took 2.3 to 2.5 times one; at
# 0.5 ms, 1.8 to 2.1 (tools/bench/exporter_scrape.py --qemu 12).
SWITCH_INTERVAL = 0.0005


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.register_options(CONF)
    for opt in CLI_OPTS:
        if opt.dest not in CONF:
            CONF.register_cli_opt(opt)
    try:
        config.parse_args(argv, prog=service.PROG, description=DESCRIPTION,
                          usage='%(prog)s [--config-file PATH] '
                                '[--config-dir DIR] [--listen-address '
                                'ADDRESS] [--listen-port PORT] [logging '
                                'options]')
        check_flags(CONF)
    except exception.InvalidConfig as e:
        print(f'{service.PROG}: error: {e}', file=sys.stderr)
        return 2
    try:
        logging.setup(CONF, service.PROG)
    except (OSError, RuntimeError, ValueError) as e:
        # an unwritable --log-file, journald bindings missing ...
        print(f'{service.PROG}: error: cannot set up logging: {e}',
              file=sys.stderr)
        return 2
    for warning in config.unknown_options(CONF):
        logging.getLogger(__name__).warning('%s', warning)
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        return service.run(build(CONF))
    except exception.NovaException as e:
        print(f'{service.PROG}: error: {e}', file=sys.stderr)
        return 1


def run() -> None:
    """The console script: main(), then exit without joining threads a
    frozen libvirt may hold (the interpreter's exit would wait for them:
    35 s with mem_stats_poll_timeout = 40). Advice names nova-libvirt
    as this operator can run it (nova.hints).
    """
    hints.set_command(hints.runnable_name(sys.argv[0]))
    code = main()
    std_logging.shutdown()  # flush every handler first
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == '__main__':
    run()
