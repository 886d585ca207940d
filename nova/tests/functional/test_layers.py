"""The house reads in one direction: each module, imported alone in a
fresh interpreter, pulls in none of what STYLE's layout forbids it, and
importing it sets nothing up (no logging routed, no directory made).
"""

import json
import subprocess
import sys

from nova import test

# module: modules it must not bring in
FORBIDDEN = {
    'nova.virt.libvirt.config': ('libvirt', 'nova.conf'),
    'nova.virt.libvirt.bounded': ('libvirt', 'nova.conf'),
    'nova.virt.libvirt.stats_poll': ('nova.conf',
                                     'nova.virt.libvirt.host'),
    'nova.virt.libvirt.host': ('nova.conf', 'nova.virt.libvirt.driver'),
    'nova.virt.libvirt.memstats': ('nova.conf',),
    'nova.virt.libvirt.stats_period': ('libvirt', 'nova.conf'),
    'nova.exporter.service': ('nova.conf', 'nova.virt.libvirt.driver'),
    'nova.exporter.app': ('nova.conf', 'nova.virt.libvirt.driver',
                          'libvirt'),
    'nova.exporter.web.server': ('nova.conf', 'nova.virt.libvirt.driver',
                                 'libvirt', 'nova.exporter.app'),
    'nova.exporter.web.handler': ('nova.conf', 'libvirt',
                                  'nova.exporter.app'),
    'nova.exporter.web.config': ('nova.conf', 'libvirt', 'ssl'),
    'nova.exporter.metrics': ('nova.conf', 'nova.virt.libvirt.driver',
                              'libvirt'),
}

PROBE = """
import json, os, sys
before = set(os.environ)
__import__(sys.argv[1])
print(json.dumps({'modules': sorted(sys.modules),
                  'env': sorted(set(os.environ) - before)}))
"""


class LayersTest(test.TestCase):

    def test_each_module_imports_only_what_it_may(self):
        for module, forbidden in FORBIDDEN.items():
            result = subprocess.run(
                [sys.executable, '-c', PROBE, module], capture_output=True,
                text=True, timeout=60)
            self.assertEqual(0, result.returncode, result.stderr)
            found = json.loads(result.stdout)
            for name in forbidden:
                self.assertNotIn(name, found['modules'],
                                 f'{module} imports {name}')
            # nothing set up at import (libvirt's log routing included)
            self.assertEqual([], found['env'], module)
