"""What this host has, for choosing a connection and checking a guest can
run: the host's libvirtd socket, the connection a command uses by default
and why, where else guests are, and whether the QEMU a connection starts
may use KVM.

Pure choices (``choose_connection``) take what was found as arguments; the
rest look at this host's files (sockets, ``/etc/libvirt/qemu.conf``,
``/dev/kvm``, the users) and never change anything. Nothing here reads
nova.conf; the driver passes its values.
"""

import grp
import os
import pwd
import re
import stat

from nova.virt.libvirt import connection
from nova.virt.libvirt import embed

# Debian's libvirt runs QEMU as this user unless qemu.conf names another.
QEMU_USER = 'libvirt-qemu'
QEMU_CONF = '/etc/libvirt/qemu.conf'
_CONF_USER = re.compile(r'^\s*user\s*=\s*"([^"]*)"', re.M)


def qemu_user(uri: str, qemu_conf: str = QEMU_CONF) -> str | None:
    """The user whose QEMU a connection starts: root on the embedded driver
    (its qemu.conf says so), qemu.conf's ``user`` for the host's libvirtd,
    None where this host cannot tell (a remote or session libvirt).
    """
    if embed.embed_root_of(uri) is not None:
        return 'root'
    if not uri.startswith(('qemu:///system', 'qemu+unix:///system')):
        return None
    try:
        with open(qemu_conf) as f:
            found = _CONF_USER.search(f.read())
    except OSError:
        found = None
    user = found.group(1) if found else QEMU_USER
    return 'root' if user in ('+0', '0', 'root') else user


def kvm_unusable(user: str | None, device: str = '/dev/kvm') -> str | None:
    """Why ``user``'s QEMU cannot open ``device`` read-write, or None when
    it can (or when the user is not known here).
    """
    if user is None:
        return None
    try:
        st = os.stat(device)
    except OSError:
        return f'{device} is missing (no KVM on this host)'
    if user == 'root':
        return None
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return None
    groups = {pw.pw_gid} | {g.gr_gid for g in grp.getgrall()
                             if user in g.gr_mem}
    mode = st.st_mode
    if st.st_uid == pw.pw_uid:
        usable = mode & 0o600 == 0o600
    elif st.st_gid in groups:
        usable = mode & 0o060 == 0o060
    else:
        usable = mode & 0o006 == 0o006
    if usable:
        return None
    owner = _name(pwd.getpwuid, st.st_uid)
    group = _name(grp.getgrgid, st.st_gid)
    return (f"libvirtd's QEMU (user {user}) cannot open {device} "
            f'({stat.filemode(mode)} {owner}:{group})')


def _name(lookup, number: int) -> str:
    try:
        return lookup(number)[0]
    except KeyError:
        return str(number)


# The sockets of the host's libvirt daemon for QEMU: the monolithic
# libvirtd's, or the modular virtqemud's.
LIBVIRTD_SOCKETS = ('/run/libvirt/libvirt-sock',
                    '/run/libvirt/virtqemud-sock')


def libvirtd_socket(sockets=LIBVIRTD_SOCKETS) -> str | None:
    """The host's libvirtd socket, where one exists, else None."""
    for path in sockets:
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                return path
        except OSError:
            continue
    return None


def choose_connection(virt_type: str, connection_uri: str,
                      state_path: str, socket: str | None = None
                      ) -> tuple[str, str]:
    """(URI, why it is that one): the configured URI, else the virt
    type's default, as Nova and virsh choose it: for QEMU guests the
    host's libvirtd where its socket (``socket``) exists, else an embedded
    driver under ``state_path``, which runs in this process and needs no
    daemon.

    ====================  =================  =========================
    connection_uri        libvirtd socket    URI
    ====================  =================  =========================
    set                   any                connection_uri
    empty, virt_type lxc  any                lxc:///system
    empty                 exists             qemu:///system
    empty                 none               qemu:///embed?root=
                                             $state_path/libvirt/
                                             qemu-embed
    ====================  =================  =========================
    """
    if connection_uri:
        return connection_uri, '[libvirt] connection_uri'
    if virt_type == 'lxc':
        return 'lxc:///system', '[libvirt] virt_type is lxc'
    if socket is not None:
        return 'qemu:///system', (
            f"the host's libvirtd: [libvirt] connection_uri is empty and "
            f'{socket} exists')
    return embed.embed_uri(
        os.path.join(state_path, 'libvirt', 'qemu-embed')), (
        'the embedded QEMU driver: [libvirt] connection_uri is empty and '
        'no libvirtd socket exists')


def guests_elsewhere(uri: str, state_path: str) -> list[str]:
    """Where else guests are, when ``uri`` has none, and how to reach
    them: the host's libvirtd (asked read-only) beside an embedded driver,
    or the embedded root under ``state_path`` beside a libvirtd.
    """
    hints = []
    if embed.embed_root_of(uri) is not None:
        socket = libvirtd_socket()
        count = socket and connection.system_guest_count()
        if count:
            hints.append(f"the host's libvirtd (qemu:///system) has {count} "
                         'guests: leave [libvirt] connection_uri empty, or '
                         'set it to qemu:///system, to read them.')
        return hints
    root = os.path.join(state_path, 'libvirt', 'qemu-embed')
    count = embed.embedded_guest_count(root)
    if count:
        hints.append(f'the embedded root {root} holds {count} guests: set '
                     '[libvirt] connection_uri = '
                     f'{embed.embed_uri(root)} to read them.')
    return hints
