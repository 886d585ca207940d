"""When a guest's QEMU process started, from the files libvirt and Linux
keep: the pid file libvirt writes for each running guest, and the process's
command line and start time, read by psutil (from ``/proc``).

Every process that may read them gets the same answer, so a guest is
``starting`` for the same time whoever asks (nova-libvirt's commands, the
demo, an exporter run as root). Where they cannot be read (another user's
libvirt files, ``/proc`` hiding other users' processes), the answer is
None and the caller knows no more than what it saw itself. Nothing here
talks to libvirt or reads nova.conf.
"""

import os

import psutil

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
        argv = psutil.Process(found).cmdline()
    except (OSError, ValueError, psutil.Error):
        return None
    if any(arg == f'guest={name}' or arg.startswith(f'guest={name},')
           for arg in argv):
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
        return psutil.Process(qemu).create_time()
    except psutil.Error:
        return None
