"""The global configuration object.

Importing this package registers every option group on ``CONF``. Only the
driver and the command line read ``CONF``; lower layers get plain values.
"""

from oslo_config import cfg

from nova.conf import exporter
from nova.conf import libvirt
from nova.conf import paths

CONF = cfg.CONF


def register_all(conf: cfg.ConfigOpts) -> None:
    """Register every option group on ``conf`` (CONF, or a scratch
    ConfigOpts that checks files before they reach CONF).
    """
    exporter.register_opts(conf)
    libvirt.register_opts(conf)
    paths.register_opts(conf)


register_all(CONF)
