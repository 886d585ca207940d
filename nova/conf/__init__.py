"""The global configuration object.

Importing this package registers every option group on ``CONF``. Only the
driver and the command line read ``CONF``; lower layers get plain values.
"""

from oslo_config import cfg

from nova.conf import exporter
from nova.conf import libvirt
from nova.conf import paths

CONF = cfg.CONF

exporter.register_opts(CONF)
libvirt.register_opts(CONF)
paths.register_opts(CONF)
