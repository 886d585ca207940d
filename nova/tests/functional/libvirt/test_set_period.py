"""Changing the statistics period of running guests on real QEMU."""

from nova.tests.functional.libvirt import base
from nova.virt.libvirt import config as vconfig
from nova.virt.libvirt import memstats
from nova.virt.libvirt import stats_period


class SetPeriodTest(base.RealQemuTestCase):

    def _period(self, guest, inactive=False):
        return vconfig.domain_balloon(
            guest.get_xml_desc(inactive=inactive))[1].period

    def test_running_guest_from_30_to_2_survives_restart(self):
        guest = self.boot('ft-setp-30', period=30)
        self.reports(guest, 1, 60)  # booted: the first report is in
        collector = memstats.MemoryStatsCollector(self.driver.host)
        before = collector.collect(['ft-setp-30'])[0]
        self.assertEqual((30, 'ok'), (before.period, before.stats_state))

        outcome, = self.driver.set_memory_stats_period(2, ['ft-setp-30'])
        self.assertIsNone(outcome.error)
        self.assertEqual(stats_period.CHANGE, outcome.change.action)
        self.assertIn('30s -> 2s, live and in the persistent definition',
                      outcome.line)
        # reports now come every ~2 s (they came every 30 s before)
        updates = self.reports(guest, 4, 20)
        gaps = [b - a for a, b in zip(updates[1:], updates[2:])]
        self.assertTrue(all(1 <= gap <= 3 for gap in gaps), updates)
        self.assertEqual(2, self._period(guest))
        self.assertEqual(2, self._period(guest, inactive=True))

        # the collector made before the change sees it, without restart
        row = collector.collect(['ft-setp-30'])[0]
        self.assertEqual((2, 'ok'), (row.period, row.stats_state),
                         row.reason)

        # power off and start again (no undefine): still 2
        guest.poweroff()
        guest.launch()
        self.assertEqual(2, self._period(guest))
        again = self.reports(guest, 3, 60)
        self.assertLessEqual(again[-1] - again[-2], 3)

    def test_disabled_guest_reported_and_left_alone(self):
        guest = self.boot('ft-setp-none', period=0)
        before = guest.get_xml_desc(inactive=True)
        outcome, = self.driver.set_memory_stats_period(2, ['ft-setp-none'])
        self.assertEqual(stats_period.CANNOT, outcome.change.action)
        # booted with the option at 0 (boot() set it): the fix is the
        # option's, then its recreation
        self.assertIn('set [libvirt] mem_stats_period_seconds above 0 and '
                      'recreate it', outcome.line)
        self.assertEqual(before, guest.get_xml_desc(inactive=True))
        balloon = vconfig.domain_balloon(guest.get_xml_desc())[1]
        self.assertEqual(('none', None), (balloon.model, balloon.period))

    def test_reconcile_to_configured_period(self):
        self.boot('ft-recon-30', period=30)
        self.boot('ft-recon-5', period=5)
        self.boot('ft-recon-off', period=0)
        self.flags(mem_stats_period_seconds=5, group='libvirt')
        period, outcomes = self.driver.reconcile_memory_stats_period()
        self.assertEqual(5, period)
        got = {o.name: o for o in outcomes}
        self.assertEqual(
            {'ft-recon-30': 'change', 'ft-recon-5': 'keep',
             'ft-recon-off': 'cannot'},
            {n: got[n].change.action for n in
             ('ft-recon-30', 'ft-recon-5', 'ft-recon-off')})
        for name in ('ft-recon-30', 'ft-recon-5'):
            guest = self.driver.host.get_guest(name)
            self.assertEqual(5, self._period(guest))
            self.assertEqual(5, self._period(guest, inactive=True))
        # and a second run has nothing left to do
        _, outcomes = self.driver.reconcile_memory_stats_period()
        self.assertNotIn('change', {o.change.action for o in outcomes})
