"""systemd's service notifications: readiness, reload, stop, watchdog.

The protocol (sd_notify(3)) is one datagram to the AF_UNIX socket named by
``$NOTIFY_SOCKET``; the watchdog's interval is ``$WATCHDOG_USEC``, meant
for the process ``$WATCHDOG_PID`` when set. Outside systemd (no
``$NOTIFY_SOCKET``) every call does nothing. Nothing here knows HTTP or
libvirt.
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
