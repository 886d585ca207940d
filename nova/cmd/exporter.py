"""The ``nova-libvirt-exporter`` console script: load, log, serve.

A bad configuration, or a port already taken, ends in one line on stderr
and exit status 2 or 1. Serving is nova.exporter.service's job. Once it
stopped serving the process exits at once: nothing waits for a libvirt
call still stuck in a worker thread.
"""

import logging as std_logging
import os
import sys

from oslo_log import log as logging

from nova import config
from nova import exception
import nova.conf
from nova.exporter import service
from nova.virt.libvirt import driver

CONF = nova.conf.CONF

DESCRIPTION = """\
Serve every libvirt guest's memory-balloon statistics, their statistics
period and why any figure is missing, for Prometheus, on
http://[exporter] listen_address:listen_port/metrics (default
127.0.0.1:9179; HTTPS and basic auth with [exporter] web_config_file).
SIGHUP re-reads the configuration, SIGTERM stops. Documentation:
doc/source/admin/exporter.rst in the source tree."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.register_options(CONF)
    try:
        config.parse_args(argv, prog=service.PROG, description=DESCRIPTION,
                          usage='%(prog)s [--config-file PATH] '
                                '[--config-dir DIR] [logging options]')
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
    try:
        return service.run(service.ExporterService(driver.LibvirtDriver(),
                                                   CONF))
    except exception.NovaException as e:
        print(f'{service.PROG}: error: {e}', file=sys.stderr)
        return 1


def run() -> None:
    """The console script: main(), then exit without joining threads a
    frozen libvirt may hold (the interpreter's exit would wait for them:
    35 s with mem_stats_poll_timeout = 40).
    """
    code = main()
    std_logging.shutdown()  # flush every handler first
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == '__main__':
    run()
