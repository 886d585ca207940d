"""libvirt's embedded QEMU driver: its URI and the root directory it keeps.

An embedded driver (``qemu:///embed?root=DIR``) runs inside the process
that opens it and needs no daemon; only one process at a time may hold a
root. Here: the URI of a root, the root of a URI, the root's ``qemu.conf``,
the guests defined under it (from its files) and the process holding it.
Nothing here talks to libvirt or reads nova.conf.
"""

import os
import urllib.parse

import psutil

EMBED_PREFIX = 'qemu:///embed'

# The embedded driver's qemu.conf. stdio_handler: no virtlogd here. user and
# group root: on hosts where /dev/kvm exists but QEMU's default user cannot
# open it, libvirt finds KVM "enabled when probing but not available now"
# and re-probes QEMU on every call (a define took ~40 s); as root it can
# open /dev/kvm and the capabilities cache holds. remember_owner 0: the
# files are root's already, so no xattr bookkeeping (and no warnings).
# cgroup_controllers empty: no cgroup of the host's is made for an
# embedded QEMU. On cgroup v1 hosts libvirt logged two "cgroup.threads: No
# such file" errors per running guest each time a command opened the
# driver; now one, "At least one cgroup controller is required", which no
# setting silences.
EMBED_QEMU_CONF = """\
# Written by nova-libvirt for its embedded QEMU driver; rewritten on use.
stdio_handler = "file"
user = "root"
group = "root"
remember_owner = 0
cgroup_controllers = [ ]
"""


def embed_root_of(uri: str) -> str | None:
    """The root directory of an embedded QEMU URI, else None."""
    if not uri.startswith(EMBED_PREFIX):
        return None
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)
    roots = query.get('root')
    return roots[0] if roots else None


def embed_uri(root: str) -> str:
    return f'{EMBED_PREFIX}?root={root}'


def prepare_embed_root(root: str) -> None:
    """Create the embedded driver's root and its etc/qemu.conf."""
    etc = os.path.join(root, 'etc')
    os.makedirs(etc, exist_ok=True)
    path = os.path.join(etc, 'qemu.conf')
    current = None
    if os.path.exists(path):
        with open(path) as f:
            current = f.read()
    if current != EMBED_QEMU_CONF:
        with open(path + '.tmp', 'w') as f:
            f.write(EMBED_QEMU_CONF)
        os.replace(path + '.tmp', path)


def embedded_guest_count(root: str) -> int:
    """Guests defined under an embedded root, from its files (without
    opening it: a process may open only one QEMU driver).
    """
    try:
        return sum(1 for name in os.listdir(os.path.join(root, 'etc', 'qemu'))
                   if name.endswith('.xml'))
    except OSError:
        return 0


def holder(root: str) -> str:
    """' (pid N: its command line)' of the process holding an embedded
    root, from the driver's pid file; '' when it cannot be told.
    """
    try:
        with open(os.path.join(root, 'run', 'qemu', 'driver.pid')) as f:
            pid = int(f.read().strip())
        argv = psutil.Process(pid).cmdline()
    except (OSError, ValueError, psutil.Error):
        return ''
    command = ' '.join(a for a in argv if a)
    if len(command) > 160:  # cut at a word
        command = command[:160].rsplit(' ', 1)[0] + ' ...'
    return f' (pid {pid}: {command})'
