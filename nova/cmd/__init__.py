"""Process-wide set-up for nova-libvirt's commands, before libvirt loads.

An embedded QEMU driver runs inside our process, and libvirt logs its
warnings to our stderr unless told otherwise. libvirt reads its log outputs
from the environment once, when the library initialises, so this must run
before ``libvirt`` is imported. A LIBVIRT_LOG_OUTPUTS the user set wins.
"""

import os

LOG_DIR = '/var/log/nova'


def _route_libvirt_log() -> None:
    if 'LIBVIRT_LOG_OUTPUTS' in os.environ:
        return
    try:
        os.makedirs(LOG_DIR, exist_ok=True)
    except OSError:
        return  # not root: keep libvirt's default (stderr)
    os.environ['LIBVIRT_LOG_OUTPUTS'] = (
        '3:file:' + os.path.join(LOG_DIR, 'nova-libvirt.log'))


_route_libvirt_log()
