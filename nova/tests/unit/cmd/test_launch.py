"""Tests for nova.cmd.launch: libvirt's log is routed before the command
(and with it libvirt) is imported, and the command's status returned.
"""

import types
from unittest import mock

from nova import test
from nova.cmd import launch


class LaunchTest(test.TestCase):

    def _launch(self, script, module, function):
        done = []

        def load(name):
            done.append(('import', name))
            return types.SimpleNamespace(**{function: lambda: 3})

        with mock.patch.object(launch.libvirt_package, 'route_libvirt_log',
                               lambda: done.append(('route',))), \
                mock.patch.object(launch.importlib, 'import_module', load):
            self.assertEqual(3, script())
        self.assertEqual([('route',), ('import', module)], done)

    def test_nova_libvirt(self):
        self._launch(launch.nova_libvirt, 'nova.cmd.libvirt', 'main')

    def test_nova_libvirt_exporter(self):
        self._launch(launch.nova_libvirt_exporter, 'nova.cmd.exporter',
                     'run')
