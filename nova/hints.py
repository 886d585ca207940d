"""How advice names the nova-libvirt command: as the operator can run it.

A hint such as ``"nova-libvirt destroy web1" stops it`` helps only if the
operator can type it: from a clone they run ``tools/nova-libvirt``, an
installed service has ``/opt/nova-libvirt/bin/nova-libvirt``. The entry
points (nova.cmd.launch) say once, before anything is printed, how this
process's command can be run again (``set_command``, from
``runnable_name``), and the commands which configuration files it read
(``set_config``); every message that names it asks ``command()``. Until
then it is ``nova-libvirt``. Nothing else here is state.
"""

import os
import shlex
import shutil

PROG = 'nova-libvirt'
#: what the tools/ wrappers set: the command as the operator typed it
ENVIRON = 'NOVA_LIBVIRT_COMMAND'

_command = [PROG]
_config: list = []


def reset() -> None:
    """As at import: ``nova-libvirt``, no configuration files (tests)."""
    _command[:] = [PROG]
    _config[:] = []


def set_command(words: list[str]) -> None:
    """How ``nova-libvirt`` is run in this process's advice."""
    _command[:] = list(words)


def set_config(config_files=(), config_dirs=()) -> None:
    """The --config-file and --config-dir this run was given: advice
    repeats them, so that it reaches the same libvirt.
    """
    _config[:] = []
    for path in config_files or ():
        _config.extend(['--config-file', path])
    for path in config_dirs or ():
        _config.extend(['--config-dir', path])


def command(*words: str) -> str:
    """``nova-libvirt WORDS`` as the operator can type it, quoted, with
    this run's configuration files.
    """
    return shlex.join([*_command, *_config, *words])


def runnable_name(script: str, environ=os.environ) -> list[str]:
    """How to run nova-libvirt, for a process started as ``script`` (the
    console script's path, ``nova-libvirt`` or ``nova-libvirt-exporter``):
    the wrapper the operator typed (ENVIRON); else ``nova-libvirt`` where
    PATH finds the one beside ``script``; else that one by its path.
    """
    given = environ.get(ENVIRON)
    if given:
        return shlex.split(given)
    beside = os.path.join(os.path.dirname(os.path.abspath(script)), PROG)
    if not os.access(beside, os.X_OK):
        return [PROG]
    found = shutil.which(PROG, path=environ.get('PATH'))
    if found is not None and os.path.realpath(found) == os.path.realpath(
            beside):
        return [PROG]
    return [beside]
