"""[DEFAULT] options that say where nova-libvirt keeps its files."""

import os

from oslo_config import cfg
from oslo_config import types


class AbsolutePath(types.String):
    """A string that must be an absolute path: a relative one would
    depend on the directory a command happens to run in.
    """

    def __init__(self):
        super().__init__(type_name='an absolute path')

    def __call__(self, value):
        value = super().__call__(value)
        if not os.path.isabs(value):
            raise ValueError(f'{value!r} is not an absolute path')
        return value


path_opts = [
    cfg.Opt('state_path',
            type=AbsolutePath(),
            default='/var/lib/nova',
            help="""
Top-level directory for the state nova-libvirt keeps on this host.

The embedded QEMU driver (used when ``[libvirt] connection_uri`` is unset)
keeps its configuration, logs and runtime files below this directory, in
``libvirt/qemu-embed``, and the test guest image is cached below it.

Related options:

* ``instances_path``
* ``[libvirt] connection_uri``
"""),
    cfg.Opt('instances_path',
            type=AbsolutePath(),
            default='$state_path/instances',
            help="""
Where instance files live: one directory per instance, named by its UUID,
holding the guest's ``console.log``.

Related options:

* ``state_path``
"""),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(path_opts)


def list_opts() -> dict:
    return {'DEFAULT': path_opts}
