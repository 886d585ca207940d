"""nova-libvirt's tests.

libvirt's own log goes to a temporary file for the whole run (and the
commands the tests start inherit it), never to the operator's
/var/log/nova: set before any test imports libvirt.
"""

import os
import tempfile

os.environ.setdefault(
    'LIBVIRT_LOG_OUTPUTS',
    f'3:file:{tempfile.gettempdir()}/nova-libvirt-tests-libvirt.log')
