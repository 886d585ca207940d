"""Nothing happens at import: no libvirt log routing (nor the directory
it makes), no logger changed. The entry points do that.
"""

import os
import subprocess
import sys

from nova import test

SHOW = ('import logging, os, {module}; '
        'print(os.environ.get("LIBVIRT_LOG_OUTPUTS"), '
        'logging.getLogger("oslo_config.cfg").filters, '
        'logging.getLogger("asyncio").filters)')


class ImportTest(test.TestCase):

    def _import(self, module: str) -> str:
        env = {k: v for k, v in os.environ.items()
               if k != 'LIBVIRT_LOG_OUTPUTS'}
        result = subprocess.run(
            [sys.executable, '-c', SHOW.format(module=module)],
            capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(0, result.returncode, result.stderr)
        return result.stdout.strip()

    def test_importing_the_door_routes_nothing(self):
        for module in ('nova.virt.libvirt.config', 'nova.virt.libvirt.host',
                       'nova.exporter.service', 'nova.exporter.web.server'):
            # no libvirt log routing, no logger changed
            self.assertEqual('None [] []', self._import(module), module)
