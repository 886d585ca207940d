"""The door to libvirt: host.py and guest.py, and where libvirt logs.

An embedded QEMU driver runs inside our process, and libvirt logs its
warnings to our stderr unless told otherwise (a command's one-line errors
would drown in them). libvirt reads its log outputs from the environment
once, when the library initialises, so ``route_libvirt_log()`` must run
before host.py or guest.py import ``libvirt``: the entry points (the
``nova.cmd.launch``, the benchmarks) call it; importing this package does
nothing, and creates no directory. A LIBVIRT_LOG_OUTPUTS the user (or the
test suite, which logs to a temporary file) set wins.
"""

import os

LOG_DIR = '/var/log/nova'


def libvirt_log_outputs(environ, log_dir: str = LOG_DIR) -> str | None:
    """The LIBVIRT_LOG_OUTPUTS to set, or None to leave libvirt's default.

    Only a log file this user can write: libvirt fails to initialise
    (``SystemError: initialization of libvirtmod failed``) when its log
    output cannot be opened, e.g. for a non-root user once root created
    the directory.
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
    """Send libvirt's own log where libvirt_log_outputs() says, before
    libvirt is imported.
    """
    outputs = libvirt_log_outputs(os.environ)
    if outputs is not None:
        os.environ['LIBVIRT_LOG_OUTPUTS'] = outputs
