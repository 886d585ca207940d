"""systemd's service protocol: notifications (readiness, reload, stop,
watchdog) and socket activation.

The protocol (sd_notify(3)) is one datagram to the AF_UNIX socket named by
``$NOTIFY_SOCKET``; the watchdog's interval is ``$WATCHDOG_USEC``, meant
for the process ``$WATCHDOG_PID`` when set. Socket activation
(sd_listen_fds(3)) passes listening sockets from file descriptor 3 on,
``$LISTEN_FDS`` of them, for the process ``$LISTEN_PID``. Outside systemd
(no ``$NOTIFY_SOCKET``, no ``$LISTEN_FDS``) every call does nothing.
Nothing here knows HTTP or libvirt.
"""

import os
import socket


def notify(*fields: str) -> bool:
    """Send ``fields`` (``READY=1``, ``WATCHDOG=1`` ...) to systemd;
    whether a notify socket was there to send them to.
    """
    address = os.environ.get('NOTIFY_SOCKET')
    if not address:
        return False
    if address.startswith('@'):  # Linux's abstract namespace
        address = '\0' + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
            sock.sendall('\n'.join(fields).encode())
        except OSError:
            return False
    return True


def watchdog_interval() -> float | None:
    """How often to ping the watchdog (half its timeout, as sd_notify(3)
    advises), in seconds; None when no watchdog watches this process.
    """
    usec = os.environ.get('WATCHDOG_USEC', '')
    pid = os.environ.get('WATCHDOG_PID', '')
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2e6


# The first file descriptor systemd passes (sd_listen_fds(3)).
LISTEN_FDS_START = 3


def listen_sockets() -> list:
    """The listening sockets systemd passed to this process (socket
    activation: ``$LISTEN_FDS`` for ``$LISTEN_PID``), or []. Each is taken
    once: the variables are removed, so no child inherits them.
    """
    count = os.environ.get('LISTEN_FDS', '')
    pid = os.environ.get('LISTEN_PID', '')
    if not count.isdigit() or pid != str(os.getpid()):
        return []
    for name in ('LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES'):
        os.environ.pop(name, None)
    found = []
    for fd in range(LISTEN_FDS_START, LISTEN_FDS_START + int(count)):
        os.set_inheritable(fd, False)
        found.append(socket.socket(fileno=fd))
    return found
