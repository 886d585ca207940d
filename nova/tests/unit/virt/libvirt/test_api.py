"""Tests for nova.virt.libvirt.api: the one import of libvirt-python."""

import os
import subprocess
import sys

import libvirt

from nova import test
from nova.virt.libvirt import api

# A poll of three guests, one of them stuck, through the real Host,
# poll, records and stuck-guest registry, on the fake connection, in an
# interpreter where libvirt-python cannot be imported (as where it is not
# installed).
WITHOUT_LIBVIRT = """
import sys
sys.modules['libvirt'] = None  # import libvirt: ImportError
from nova.tests.fixtures import libvirt as fakelibvirt
from nova.virt.libvirt import api
from nova.virt.libvirt import host as libvirt_host
domains = [fakelibvirt.FakeDomain(f'g{i}', 1, i + 1) for i in range(3)]
domains[1].freeze()
conn = fakelibvirt.FakeConnection(*domains)
host = libvirt_host.Host('fake:///', timeout=1.0,
                         opener=lambda uri, read_only: conn)
try:
    records = host.get_memory_stats(timeout=1.0)
    print(sorted((r.name, 'last_update' in r.stats,
                  r.monitor_busy is not None) for r in records))
    print(host.stuck.names, api.Error.__name__,
          sys.modules['libvirt'])
finally:
    for domain in domains:
        domain.thaw()
"""


class ApiTest(test.TestCase):

    def test_constants_are_libvirts(self):
        names = [n for n in dir(api) if n.startswith('VIR_')]
        self.assertGreater(len(names), 20)
        for name in names:
            self.assertEqual(getattr(libvirt, name), getattr(api, name),
                             name)

    def test_error_is_libvirts_once_loaded(self):
        self.assertIs(libvirt.libvirtError, api.Error)
        with self.assertRaises(AttributeError):
            api.Nothing  # noqa: B018

    def _python(self, code: str, env=None) -> str:
        result = subprocess.run(
            [sys.executable, '-c', code], capture_output=True, text=True,
            timeout=60, env=env)
        self.assertEqual(0, result.returncode, result.stderr)
        return result.stdout

    def test_nothing_loads_libvirt_until_asked(self):
        env = {k: v for k, v in os.environ.items()
               if k != 'LIBVIRT_LOG_OUTPUTS'}
        env['HOME'] = self.useFixture(
            __import__('fixtures').TempDir()).path
        out = self._python(
            'import sys\n'
            'from nova.virt.libvirt import api, host, guest, records,'
            ' stats_poll, stuck, late_reads, connection\n'
            'print("libvirt" in sys.modules, api.Error.__name__)\n'
            'api.libvirt_log_outputs = lambda environ: "1:file:/dev/null"\n'
            'libvirt = api.module()\n'
            'import os\n'
            'print(api.Error is libvirt.libvirtError,'
            ' os.environ["LIBVIRT_LOG_OUTPUTS"])\n', env)
        # no libvirt at import; loaded on first use, its log routed first
        self.assertEqual('False _NeverRaised\nTrue 1:file:/dev/null\n', out)

    def test_a_poll_without_libvirt_installed(self):
        out = self._python(WITHOUT_LIBVIRT)
        # the healthy guests' figures, the stuck one's QEMU found busy and
        # kept out of the next bulk calls
        self.assertEqual(
            "[('g0', True, False), ('g1', False, True), ('g2', True, False)]"
            "\n['g1'] _NeverRaised None\n", out)
