"""[DEFAULT] options that say where nova-libvirt keeps its files."""

from oslo_config import cfg

path_opts = [
    cfg.StrOpt('state_path',
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
    cfg.StrOpt('instances_path',
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
