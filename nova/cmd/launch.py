"""What the console scripts call: route libvirt's log, say how advice
names the command (nova.hints), then run.

libvirt reads where to log once, when it loads, and each command imports
libvirt at module level; so the route is set here, before the command's
module is imported, and not by importing anything (see
nova.virt.libvirt.route_libvirt_log). ``python -m nova.cmd.exporter``
runs the same command without the route: libvirt then logs to stderr,
or where LIBVIRT_LOG_OUTPUTS says.
"""

import importlib
import sys

from nova import hints
from nova.virt import libvirt as libvirt_package


def _run(module: str, function: str):
    libvirt_package.route_libvirt_log()
    # advice names nova-libvirt as this operator can run it
    hints.set_command(hints.runnable_name(sys.argv[0]))
    return getattr(importlib.import_module(module), function)()


def nova_libvirt():
    """The ``nova-libvirt`` console script."""
    return _run('nova.cmd.libvirt', 'main')


def nova_libvirt_exporter():
    """The ``nova-libvirt-exporter`` console script."""
    return _run('nova.cmd.exporter', 'run')
