"""A period per flavor and per image, on real QEMU: each guest refreshes
at the period its flavor (else its image, else the option) asks for, keeps
it through a reconcile after the option changed, and a guest just booted
is ``starting`` until it reports.
"""

from nova.tests.functional.libvirt import base
from nova.virt.libvirt import config as vconfig
from nova.virt.libvirt import stats_period

SPEC = 'hw:mem_stats_period_seconds'
PROP = 'hw_mem_stats_period_seconds'


class OwnPeriodTest(base.RealQemuTestCase):

    def _balloon(self, guest, inactive=False):
        return vconfig.domain_balloon(
            guest.get_xml_desc(inactive=inactive))[1]

    def test_two_guests_refresh_at_their_own_periods(self):
        fast = self.boot('ft-own-fast', period=10,
                         extra_specs={SPEC: '2', 'hw:cpu_policy': 'shared'})
        slow = self.boot('ft-own-slow', period=10, properties={PROP: '6'})
        self.assertEqual(2, self._balloon(fast).period)
        self.assertEqual(6, self._balloon(slow).period)
        # gaps between reports: about 2 s for one, about 6 s for the other
        updates = self.reports(fast, 5, 60)
        gaps = [b - a for a, b in zip(updates[1:], updates[2:])]
        self.assertTrue(all(1 <= gap <= 3 for gap in gaps), updates)
        updates = self.reports(slow, 4, 60)
        gaps = [b - a for a, b in zip(updates[1:], updates[2:])]
        self.assertTrue(all(5 <= gap <= 7 for gap in gaps), updates)
        # the collector's wanted period follows each guest's own
        rows = {r.name: r for r in self.driver.memory_stats_collector()
                .collect(['ft-own-fast', 'ft-own-slow'])}
        self.assertEqual((2, 2), (rows['ft-own-fast'].period,
                                  rows['ft-own-fast'].wanted_period))
        self.assertEqual((6, 6), (rows['ft-own-slow'].period,
                                  rows['ft-own-slow'].wanted_period))
        self.assertEqual({'ok'}, {r.stats_state for r in rows.values()})

    def test_flavor_disabling_statistics_gets_model_none(self):
        guest = self.boot('ft-own-rt', period=10,
                          extra_specs={SPEC: '0', 'hw:cpu_realtime': 'yes'})
        balloon = self._balloon(guest)
        self.assertEqual(('none', None), (balloon.model, balloon.period))
        row = self.driver.memory_stats_collector().collect(['ft-own-rt'])[0]
        self.assertEqual('balloon-disabled', row.stats_state)
        # its metadata says why, as libvirt stored it
        meta = vconfig.domain_facts(guest.get_xml_desc()).instance
        self.assertEqual({SPEC: '0', 'hw:cpu_realtime': 'yes'},
                         meta.flavor.extra_specs)

    def test_reconcile_after_option_change_leaves_pinned_guest(self):
        plain = self.boot('ft-own-plain', period=5)
        pinned = self.boot('ft-own-pinned', period=5,
                           extra_specs={SPEC: '3'})
        self.assertEqual(3, self._balloon(pinned).period)
        self.flags(mem_stats_period_seconds=9, group='libvirt')
        period, outcomes = self.driver.reconcile_memory_stats_period()
        self.assertEqual(9, period)
        got = {o.name: o for o in outcomes}
        self.assertEqual(stats_period.CHANGE,
                         got['ft-own-plain'].change.action)
        self.assertEqual(stats_period.KEEP,
                         got['ft-own-pinned'].change.action)
        self.assertIn('as its flavor extra spec hw:mem_stats_period_seconds '
                      'asks', got['ft-own-pinned'].line)
        for inactive in (False, True):
            self.assertEqual(9, self._balloon(plain, inactive).period)
            self.assertEqual(3, self._balloon(pinned, inactive).period)
        # set by hand, then reconciled back to what the flavor asks
        outcome, = self.driver.set_memory_stats_period(7, ['ft-own-pinned'])
        self.assertEqual(stats_period.CHANGE, outcome.change.action)
        self.assertEqual(7, self._balloon(pinned).period)
        _, outcomes = self.driver.reconcile_memory_stats_period()
        self.assertEqual(3, self._balloon(pinned).period)

    def test_fresh_guest_is_starting_until_it_reports(self):
        self.flags(mem_stats_start_grace_seconds=60, group='libvirt')
        collector = self.driver.memory_stats_collector()
        guest = self.boot('ft-own-fresh', period=1)
        states = []

        def reported():
            row = collector.collect(['ft-own-fresh'])[0]
            states.append(row.stats_state)
            return row.stats_state == 'ok'
        self.wait_for('the first report', reported, 60, interval=0.25)
        self.assertEqual('starting', states[0])
        # every look before its first report said starting: a boot of
        # more than two periods (2 s here) is not "no guest driver"
        self.assertEqual({'starting'}, set(states[:-1]), states)
        self.assertTrue(guest.get_memory_stats().get('last_update'))
