"""libvirt-python, imported here only, and lazily: the one import of it.

Nothing imports libvirt's C library at import time (as Nova's host.py,
which imports it when a Host is made): ``module()`` does, on first use,
after ``route_libvirt_log()``, since libvirt reads where to log once, when
it loads. So a command, a bench or a test imports any module of ours in
any order, and the poll, its records and the stuck-guest registry run on a
fake connection where libvirt-python is not installed at all.

The constants are our copies of those we use: libvirt's stable ABI (its
public headers; a unit test compares each with libvirt-python's). ``Error``
is libvirt-python's ``libvirtError`` once anything loaded libvirt, else an
exception nothing raises: an ``except api.Error`` never loads libvirt.
The calls of libvirt's module (open, its error handler, its event loop)
are made here; connection.py bounds every call (STYLE: the door).
"""

import importlib
import os
import sys

# virDomainState
VIR_DOMAIN_RUNNING = 1
VIR_DOMAIN_BLOCKED = 2
VIR_DOMAIN_PAUSED = 3
VIR_DOMAIN_SHUTDOWN = 4
VIR_DOMAIN_SHUTOFF = 5
VIR_DOMAIN_PMSUSPENDED = 7
# virDomainControlState
VIR_DOMAIN_CONTROL_OK = 0
# virErrorNumber
VIR_ERR_INTERNAL_ERROR = 1
VIR_ERR_NO_SUPPORT = 3
VIR_ERR_NO_DOMAIN = 42
VIR_ERR_OPERATION_INVALID = 55
VIR_ERR_SYSTEM_ERROR = 38
VIR_ERR_RPC = 39
VIR_ERR_INVALID_CONN = 6
VIR_ERR_NO_DOMAIN_METADATA = 80
# flags and kinds
VIR_DOMAIN_AFFECT_LIVE = 1
VIR_DOMAIN_AFFECT_CONFIG = 2
VIR_DOMAIN_XML_INACTIVE = 2
VIR_DOMAIN_DEFINE_VALIDATE = 1
VIR_DOMAIN_METADATA_ELEMENT = 2
VIR_CONNECT_LIST_DOMAINS_ACTIVE = 1
VIR_DOMAIN_STATS_STATE = 1
VIR_DOMAIN_STATS_BALLOON = 4
VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT = 1 << 29

LOG_DIR = '/var/log/nova'

_module = None


class _NeverRaised(Exception):
    """``Error`` while libvirt is not loaded: nothing could raise it."""


def __getattr__(name: str):
    if name == 'Error':
        loaded = _module or sys.modules.get('libvirt')
        return loaded.libvirtError if loaded is not None else _NeverRaised
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def libvirt_log_outputs(environ, log_dir: str = LOG_DIR) -> str | None:
    """The LIBVIRT_LOG_OUTPUTS to set, or None to leave libvirt's default.

    Only a log file this user can write: libvirt fails to initialise
    (``SystemError: initialization of libvirtmod failed``) when its log
    output cannot be opened, e.g. for a non-root user once root created
    the directory. A LIBVIRT_LOG_OUTPUTS the user (or the test suite,
    which logs to a temporary file) set wins.
    """
    if 'LIBVIRT_LOG_OUTPUTS' in environ:
        return None
    path = os.path.join(log_dir, 'nova-libvirt.log')
    try:
        os.makedirs(log_dir, exist_ok=True)
    except OSError:
        return None  # not root: keep libvirt's default (stderr)
    writable = (os.access(path, os.W_OK) if os.path.exists(path)
                else os.access(log_dir, os.W_OK | os.X_OK))
    return f'3:file:{path}' if writable else None


def route_libvirt_log() -> None:
    """Send libvirt's own log where libvirt_log_outputs() says (an
    embedded QEMU driver runs in our process, and its warnings would
    otherwise drown a command's one-line errors on stderr).
    """
    outputs = libvirt_log_outputs(os.environ)
    if outputs is not None:
        os.environ['LIBVIRT_LOG_OUTPUTS'] = outputs


def module():
    """libvirt-python, imported on the first call, its log routed first
    (unless something imported it already: then as it was).
    """
    global _module
    if _module is None:
        if 'libvirt' not in sys.modules:
            route_libvirt_log()
        _module = importlib.import_module('libvirt')
    return _module


def open_connection(uri: str, read_only: bool):
    """libvirt's open (VIR_CONNECT_RO where ``read_only``): a
    virConnect.
    """
    libvirt = module()
    return libvirt.openReadOnly(uri) if read_only else libvirt.open(uri)


def _ignore_error(ctx, error) -> None:
    """libvirt prints every error to stderr; we raise ours instead."""


def register_event_loop() -> None:
    """Register libvirt's default event loop (before a connection opens,
    for its keepalives), and an error handler that prints nothing.
    """
    libvirt = module()
    libvirt.registerErrorHandler(_ignore_error, None)
    libvirt.virEventRegisterDefaultImpl()


def run_event_loop() -> None:
    """Run libvirt's default event loop, forever (a thread's target)."""
    libvirt = module()
    while True:
        libvirt.virEventRunDefaultImpl()
