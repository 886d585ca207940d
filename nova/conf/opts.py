"""Every option group, for oslo-config-generator and the Sphinx extension.

Registered under the ``oslo.config.opts`` entry point as ``nova.conf``.
"""

import collections

from nova.conf import exporter
from nova.conf import libvirt
from nova.conf import paths

_MODULES = (paths, libvirt, exporter)


def list_opts() -> list:
    """[(group, [opts])] sorted by group name, as oslo.config expects."""
    groups = collections.defaultdict(list)
    for module in _MODULES:
        for group, opts in module.list_opts().items():
            groups[group].extend(opts)
    return sorted(groups.items(),
                  key=lambda item: getattr(item[0], 'name', item[0]))
