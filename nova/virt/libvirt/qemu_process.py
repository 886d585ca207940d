"""When a guest's QEMU process started, from the files libvirt and Linux
keep: the pid file libvirt writes for each running guest, and the process's
start time in ``/proc``.

Every process that may read them gets the same answer, so a guest is
``starting`` for the same time whoever asks (nova-libvirt's commands, the
demo, an exporter run as root). Where they cannot be read (another user's
libvirt files, ``/proc`` hiding other users' processes), the answer is
None and the caller knows no more than what it saw itself. Nothing here
talks to libvirt or reads nova.conf.
"""

import os

SYSTEM_STATE_DIR = '/run/libvirt/qemu'


def state_dir(uri: str, embed_root: str | None) -> str | None:
    """Where the QEMU driver behind ``uri`` keeps its pid files, on this
    host; None for a driver that is not local.
    """
    if embed_root is not None:
        return os.path.join(embed_root, 'run', 'qemu')
    if uri.startswith(('qemu:///system', 'qemu+unix:///system')):
        return SYSTEM_STATE_DIR
    return None


def _boot_time() -> float:
    with open('/proc/stat') as f:
        for line in f:
            if line.startswith('btime '):
                return float(line.split()[1])
    raise OSError('no btime in /proc/stat')


def pid(directory: str | None, name: str) -> int | None:
    """The pid of guest ``name``'s QEMU process, from the pid file in
    ``directory``, if that process still is the guest's (not one that took
    the pid since); None where it cannot be read here.
    """
    if directory is None:
        return None
    try:
        with open(os.path.join(directory, f'{name}.pid')) as f:
            found = int(f.read().strip())
        with open(f'/proc/{found}/cmdline', 'rb') as f:
            argv = f.read().split(b'\0')
    except (OSError, ValueError):
        return None
    if any(arg == f'guest={name}'.encode() or
           arg.startswith(f'guest={name},'.encode()) for arg in argv):
        return found
    return None


def started_at(directory: str | None, name: str) -> float | None:
    """When the QEMU process of guest ``name`` started (epoch seconds), or
    None where it cannot be read here.
    """
    qemu = pid(directory, name)
    if qemu is None:
        return None
    try:
        with open(f'/proc/{qemu}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
        ticks = int(fields[19])  # starttime, field 22 of proc(5)
        return _boot_time() + ticks / os.sysconf('SC_CLK_TCK')
    except (OSError, ValueError, IndexError):
        return None
