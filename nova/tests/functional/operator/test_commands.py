"""One guest's life across separate nova-libvirt processes.

Boot with one process, read with others, as an operator does: on the
system libvirtd and on the embedded driver (where each process opens the
driver anew and libvirt reconnects to the running QEMU). Change its period
twice, and stop it. On the system daemon, also pause and resume it with
virsh, and stop it behind nova-libvirt's back. (virsh on an embedded root
is not used: libvirt 9.0's virsh crashes now and then when it exits while
the driver is reconnecting, and the guest dies with it.)
"""

import time

import testscenarios

from nova.tests.functional.operator import base

load_tests = testscenarios.load_tests_apply_scenarios


class GuestAcrossProcessesTest(base.OperatorTestCase):

    scenarios = [('system', {'uri': 'system'}),
                 ('embedded', {'uri': 'embedded'})]

    def _state(self, name: str) -> dict:
        row = self.memstats(name)[name]
        # A healthy guest read by a fresh process is never called hung.
        self.assertNotEqual('unresponsive', row['stats_state'],
                            row['reason'])
        return row

    def _wait_state(self, name: str, state: str, timeout: float = 60):
        return self.wait_for(
            f'{name} {state}',
            lambda: (lambda r: r['stats_state'] == state and r)(
                self._state(name)), timeout)

    def test_boot_read_change_stop(self):
        name = base.PREFIX + self.uri[:3]
        self.boot(name, period=2)
        row = self._wait_state(name, 'ok')
        self.assertEqual(('ops', 2), (row['project'], row['period']))
        for _ in range(3):  # each a new process, a new connection
            self.assertEqual('ok', self._state(name)['stats_state'])

        if self.uri == 'system':
            # Paused: QEMU's statistics timer stops; never stale.
            self.virsh('suspend', name)
            time.sleep(5)  # over twice the period
            row = self._state(name)
            self.assertEqual('paused', row['stats_state'], row['reason'])
            self.assertRegex(row['reason'], r'last report \d+s ago')
            self.assertIsNotNone(row['used_mib'])
            self.virsh('resume', name)
            self._wait_state(name, 'ok', 20)

        # A period change, then another while the last report is older
        # than twice the new period: not stale, in a fresh process.
        out = self.nova_libvirt('set-period', '10', '--all').stdout
        self.assertIn(f'{name}: period 2s -> 10s', out)
        time.sleep(6)
        self.nova_libvirt('set-period', '2', name)
        row = self._state(name)
        self.assertEqual('ok', row['stats_state'], row['reason'])
        self.assertIn('Period changed to 2s', row['reason'])
        self._wait_state(name, 'ok', 10)

        if self.uri == 'system':
            self.assertIn('memstats:period',
                          self.virsh('dumpxml', name).stdout)
            # Not running: its owner stays, its figures go.
            self.virsh('destroy', name)
            row = self._state(name)
            self.assertEqual('not-running', row['stats_state'])
            self.assertEqual(('ops', name), (row['project'],
                                             row['display_name']))
            self.assertIsNone(row['actual_mib'])
            # ... and its defined period
            self.assertEqual(2, row['period'])
