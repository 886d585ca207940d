"""systemd's service protocol: notifications (readiness, reload, stop,
watchdog) and socket activation, through systemd-python (libsystemd's
sd_notify and sd_listen_fds), with what it lacks.

Outside systemd (no ``$NOTIFY_SOCKET``, no ``$LISTEN_FDS``) every call
does nothing. What systemd-python lacks is here: it has no
sd_watchdog_enabled(3), so the watchdog's interval is read here
(``$WATCHDOG_USEC``, meant for the process ``$WATCHDOG_PID`` when set),
and its listen_fds() unsets the variables in C's environment but not in
Python's os.environ. Nothing here knows HTTP or libvirt.
"""

import os
import socket

from systemd import daemon


def notify(*fields: str) -> bool:
    """Send ``fields`` (``READY=1``, ``WATCHDOG=1`` ...) to systemd, one
    datagram; whether a notify socket took them.
    """
    try:
        return bool(daemon.notify('\n'.join(fields)))
    except OSError:  # a socket named but gone: not the service's failure
        return False


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


def listen_sockets() -> list:
    """The listening sockets systemd passed to this process (socket
    activation: ``$LISTEN_FDS`` for ``$LISTEN_PID``), or []. Each is taken
    once: the variables are removed, so no child inherits them.
    """
    found = []
    for fd in daemon.listen_fds(unset_environment=True):
        os.set_inheritable(fd, False)
        found.append(socket.socket(fileno=fd))
    # libsystemd unsets them in C's environment only: Python's copy, which
    # subprocess hands to children, keeps them otherwise (measured)
    for name in ('LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES'):
        os.environ.pop(name, None)
    return found
