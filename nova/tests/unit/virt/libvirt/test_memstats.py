"""Tests for nova.virt.libvirt.memstats: formulas and the collector."""

import testscenarios

from nova import test
from nova.tests.fixtures.memstats import FULL
from nova.tests.fixtures.memstats import NOW
from nova.tests.fixtures.memstats import StatsSource
from nova.tests.fixtures.memstats import domain_xml
from nova.tests.fixtures.memstats import make_record
from nova.virt.libvirt import memstats
from nova.virt.libvirt import records
from nova.virt.libvirt import stats_period

load_tests = testscenarios.load_tests_apply_scenarios


class FiguresTest(test.TestCase):

    def test_full_set_uses_usable(self):
        got = memstats.figures(FULL)
        self.assertEqual(round((223632 - 198964) / 1024, 2),
                         got['memory_usage_mb'])
        self.assertEqual(round(197520 / 1024, 2), got['memory_resident_mb'])
        self.assertEqual(256.0, got['memory_actual_mb'])
        self.assertEqual(round(223632 / 1024, 2),
                         got['memory_available_mb'])
        self.assertEqual((1.0, 2.0), (got['swap_in_mb'], got['swap_out_mb']))
        self.assertEqual(NOW - 3, got['last_update'])

    def test_without_usable_uses_unused(self):
        stats = dict(FULL)
        del stats['usable']
        self.assertEqual(round((223632 - 195840) / 1024, 2),
                         memstats.figures(stats)['memory_usage_mb'])

    def test_available_alone_gives_no_usage(self):
        got = memstats.figures({'available': 1024})
        self.assertIsNone(got['memory_usage_mb'])
        self.assertEqual(1.0, got['memory_available_mb'])

    def test_host_side_only(self):
        got = memstats.figures({'rss': 2048, 'last_update': 0})
        self.assertEqual(2.0, got['memory_resident_mb'])
        for key in ('memory_usage_mb', 'memory_actual_mb',
                    'memory_available_mb', 'swap_in_mb', 'swap_out_mb',
                    'last_update'):
            self.assertIsNone(got[key], key)

    def test_empty(self):
        self.assertTrue(all(v is None
                            for v in memstats.figures({}).values()))


class BulkKeysTest(test.TestCase):

    def test_renamed_to_memory_stats_names(self):
        record = {'state.state': 1, 'balloon.current': 262144,
                  'balloon.maximum': 262144, 'balloon.rss': 5,
                  'balloon.last-update': 7, 'balloon.usable': 3,
                  'balloon.disk_caches': 2}
        self.assertEqual(
            {'actual': 262144, 'maximum': 262144, 'rss': 5,
             'last_update': 7, 'usable': 3, 'disk_caches': 2},
            records.balloon_stats_to_memory_stats(record))










class CollectorTest(test.TestCase):

    def setUp(self):
        super().setUp()
        self.records = [
            make_record('b-ok', '<memballoon model="virtio"><stats '
                        'period="2"/></memballoon>', FULL),
            make_record('a-off', '<memballoon model="none"/>', {'rss': 1024}),
            make_record('c-down', '', {}, active=False),
            make_record('d-gone', '<memballoon model="virtio"/>', FULL,
                    fail='Domain not found'),
            records.StatsRecord(None, 'e-err', None, False, {},
                                           'No guest named e-err.'),
        ]
        self.host = StatsSource(self.records)
        self.collector = memstats.MemoryStatsCollector(self.host,
                                                       clock=lambda: NOW)

    def test_each_guest_gets_a_state(self):
        rows = {r.name: r for r in self.collector.collect()}
        self.assertEqual(
            {'b-ok': 'ok', 'a-off': 'balloon-disabled',
             'c-down': 'not-running', 'd-gone': 'error', 'e-err': 'error'},
            {n: r.stats_state for n, r in rows.items()})
        self.assertEqual(2, rows['b-ok'].period)
        self.assertEqual(256.0, rows['b-ok'].memory_actual_mb)
        self.assertIsNone(rows['a-off'].period)
        self.assertEqual(1.0, rows['a-off'].memory_resident_mb)
        self.assertIn('Domain not found', rows['d-gone'].reason)
        self.assertIn('XMLDesc()', rows['d-gone'].reason)
        self.assertEqual('No guest named e-err.', rows['e-err'].reason)

    def test_sorted_by_name_or_requested_order(self):
        self.assertEqual(['a-off', 'b-ok', 'c-down', 'd-gone', 'e-err'],
                         [r.name for r in self.collector.collect()])
        names = ['e-err', 'b-ok', 'a-off', 'd-gone', 'c-down']
        self.assertEqual(names,
                         [r.name for r in self.collector.collect(names)])
        self.assertEqual([None, names], self.host.calls)

    def test_xml_read_once_per_domain_run(self):
        for _ in range(3):
            self.collector.collect()
        ok = self.records[0].guest
        self.assertEqual(1, ok.xml_reads)
        # not running: read once too, for its owner
        self.assertEqual(1, self.records[2].guest.xml_reads)
        self.records[0].domain_id = 2  # restarted: its XML may differ
        self.collector.collect()
        self.assertEqual(2, ok.xml_reads)

    def test_ok_turns_stale(self):
        clock = [NOW]
        collector = memstats.MemoryStatsCollector(
            StatsSource(self.records[:1]), clock=lambda: clock[0])
        self.assertEqual('ok', collector.collect()[0].stats_state)
        clock[0] = NOW + 10
        row = collector.collect()[0]
        self.assertEqual('stale', row.stats_state)
        self.assertIn('13s ago', row.reason)

    def test_a_disabled_balloon_is_told_the_fix_for_its_source(self):
        collector = memstats.MemoryStatsCollector(
            self.host, clock=lambda: NOW,
            wanted=lambda metadata: stats_period.Wanted(0, 'flavor'))
        off = {r.name: r for r in collector.collect()}['a-off']
        self.assertEqual('balloon-disabled', off.stats_state)
        self.assertIn('its flavor extra spec hw:mem_stats_period_seconds '
                      'is 0: resize it to a flavor', off.reason)
        self.assertNotIn('[libvirt] mem_stats_period_seconds', off.reason)

    def test_wanted_period_only_where_a_balloon_can_take_one(self):
        asked = []

        def wanted(metadata):
            asked.append(metadata)
            return stats_period.Wanted(7, 'flavor')
        collector = memstats.MemoryStatsCollector(
            self.host, clock=lambda: NOW, wanted=wanted)
        rows = {r.name: r for r in collector.collect()}
        self.assertEqual({'b-ok': 7, 'a-off': None, 'c-down': None,
                          'd-gone': None, 'e-err': None},
                         {n: r.wanted_period for n, r in rows.items()})
        # asked of each running guest (for its remedy too), told only
        # where the balloon can take a period
        self.assertEqual(2, len(asked))
        # without the rule, nobody is told
        self.assertIsNone(self.collector.collect(['b-ok'])[0].wanted_period)

    def test_decisions_kept_while_metadata_and_policy_key_hold(self):
        asked, key = [], [('10', True)]

        def wanted(metadata):
            asked.append('wanted')
            return stats_period.Wanted(7, 'flavor')

        def reporting(metadata):
            asked.append('reporting')
            return None
        collector = memstats.MemoryStatsCollector(
            self.host, clock=lambda: NOW, wanted=wanted,
            reporting=reporting, policy_key=lambda: key[0])
        collector.collect()
        # each running guest asked once, answers kept for the next polls
        self.assertEqual(4, len(asked))
        for _ in range(3):
            rows = {r.name: r for r in collector.collect()}
        self.assertEqual(4, len(asked))
        self.assertEqual(7, rows['b-ok'].wanted_period)
        key[0] = ('20', True)  # a reload changed an option: asked again
        collector.collect()
        self.assertEqual(8, len(asked))
        self.records[0].domain_id = 2  # restarted: its XML read again
        collector.collect()
        self.assertEqual(10, len(asked))

    def test_as_dict_has_the_json_keys(self):
        # the keys themselves are pinned in nova/tests/unit/test_contracts
        row = self.collector.collect(['b-ok'])[0]
        self.assertEqual(list(memstats.FIELDS), list(row.as_dict()))

    def test_unparsable_balloon_is_an_error(self):
        collector = memstats.MemoryStatsCollector(StatsSource([make_record(
            'bad', '<memballoon model="virtio"><stats period="x"/>'
                   '</memballoon>', FULL)]), clock=lambda: NOW)
        row = collector.collect()[0]
        self.assertEqual('error', row.stats_state)
        self.assertIn("'period': 'x'", row.reason)


class CollectorPeriodChangeTest(test.TestCase):
    """A period changed by another process is seen without a restart."""

    def setUp(self):
        super().setUp()
        self.clock = [NOW]
        self.record = make_record('g', self._balloon(30),
                              dict(FULL, last_update=NOW))
        self.collector = memstats.MemoryStatsCollector(
            StatsSource([self.record]), clock=lambda: self.clock[0])

    @staticmethod
    def _balloon(period):
        stats = '' if period is None else f'<stats period="{period}"/>'
        return f'<memballoon model="virtio">{stats}</memballoon>'

    def _poll(self, now, last_update, period=None):
        self.clock[0] = now
        self.record.stats = dict(FULL, last_update=last_update)
        if period is not None:
            self.record.guest.xml = domain_xml(self._balloon(period))
        return self.collector.collect()[0]

    def test_shortened_period_seen_at_next_report(self):
        self.assertEqual(30, self._poll(NOW, NOW).period)
        row = self._poll(NOW + 13, NOW + 12, period=2)  # set to 2 at +11
        self.assertEqual((2, 'ok'), (row.period, row.stats_state))
        self.assertEqual(2, self.record.guest.xml_reads)
        for t in range(14, 30, 2):  # then on cadence: no more reads
            self._poll(NOW + t, NOW + t)
        self.assertEqual(2, self.record.guest.xml_reads)

    def test_lengthened_period_is_not_stale(self):
        self._poll(NOW, NOW, period=2)
        self.collector._known.clear()
        self._poll(NOW, NOW)
        row = self._poll(NOW + 6, NOW, period=30)  # no report for 6 s
        self.assertEqual((30, 'ok'), (row.period, row.stats_state))

    def test_stale_guest_xml_read_once(self):
        self._poll(NOW, NOW, period=2)
        for t in range(5, 60, 5):
            row = self._poll(NOW + t, NOW)
        self.assertEqual('stale', row.stats_state)
        self.assertEqual(2, self.record.guest.xml_reads)

    def test_changed_period_gets_grace_seen_here(self):
        # set-period 10, later 2 by virsh (no word in the XML): the last
        # report came 10 s ago, under the old period
        self._poll(NOW, NOW, period=10)
        self._poll(NOW + 10, NOW + 10)
        row = self._poll(NOW + 21, NOW + 10, period=2)
        self.assertEqual(('ok', 10), (row.stats_state, row.period))
        # overdue under 10 s: its XML is read again, and the change seen
        row = self._poll(NOW + 27, NOW + 10)
        self.assertEqual(('ok', 2), (row.stats_state, row.period))
        self.assertIn('Period changed to 2s 0s ago', row.reason)
        row = self._poll(NOW + 32, NOW + 10)  # still silent 5 s later
        self.assertEqual('stale', row.stats_state)

    def test_changed_period_gets_grace_from_the_xml(self):
        # A fresh process: only the XML tells that set-period ran at +20
        self.record.guest.xml = domain_xml(self._balloon(2)).replace(
            '<devices>', '<metadata>' + PERIOD_META.format(2, NOW + 20) +
            '</metadata><devices>')
        self.clock[0] = NOW + 21
        self.record.stats = dict(FULL, last_update=NOW + 10)
        row = self.collector.collect()[0]
        self.assertEqual('ok', row.stats_state)
        self.assertIn('Period changed to 2s 1s ago', row.reason)

    def test_period_change_record_of_another_period_is_ignored(self):
        # someone changed it again since, with virsh
        self.record.guest.xml = domain_xml(self._balloon(2)).replace(
            '<devices>', '<metadata>' + PERIOD_META.format(30, NOW + 20) +
            '</metadata><devices>')
        self.clock[0] = NOW + 21
        self.record.stats = dict(FULL, last_update=NOW + 10)
        self.assertEqual('stale', self.collector.collect()[0].stats_state)

    def test_forget_reads_every_xml_again(self):
        self._poll(NOW, NOW)
        self._poll(NOW + 1, NOW)
        self.assertEqual(1, self.record.guest.xml_reads)
        self.collector.forget()
        self._poll(NOW + 2, NOW)
        self.assertEqual(2, self.record.guest.xml_reads)

    def test_stopped_reports_become_no_stats_period(self):
        self._poll(NOW, NOW)
        # set-period 0: libvirt drops <stats>, reports stop
        self.record.guest.xml = domain_xml('<memballoon model="virtio"/>')
        row = self._poll(NOW + 60, NOW)
        self.assertEqual('no-stats-period', row.stats_state)


PERIOD_META = ('<memstats:period xmlns:memstats="http://openstack.org/xmlns/'
               'libvirt/nova-libvirt/memstats/1.0" seconds="{}" '
               'changed="{}"/>')


class CollectorPausedTest(test.TestCase):

    def test_paused_guest_keeps_last_figures_and_their_age(self):
        record = make_record('p', '<memballoon model="virtio"><stats '
                             'period="2"/></memballoon>',
                         dict(FULL, last_update=NOW - 300))
        record.state = 3  # VIR_DOMAIN_PAUSED
        row = memstats.MemoryStatsCollector(
            StatsSource([record]), clock=lambda: NOW).collect()[0]
        self.assertEqual('paused', row.stats_state)
        self.assertIn('last report 300s ago', row.reason)
        self.assertEqual(2, row.period)
        self.assertEqual(NOW - 300, row.last_update)


class CollectorUnresponsiveTest(test.TestCase):

    def test_skipped_guest_is_unresponsive_others_ok(self):
        ok = make_record('ok', '<memballoon model="virtio"><stats period="2"/>'
                           '</memballoon>', FULL)
        frozen = make_record('frozen', '<memballoon model="virtio"><stats '
                                   'period="2"/></memballoon>',
                         {'actual': 262144})
        frozen.monitor_busy = 12.5
        rows = memstats.MemoryStatsCollector(
            StatsSource([ok, frozen]), clock=lambda: NOW).collect()
        self.assertEqual({'ok': 'ok', 'frozen': 'unresponsive'},
                         {r.name: r.stats_state for r in rows})
        self.assertIn('busy for 12s', rows[0].reason)
        self.assertNotIn('virtio_balloon', rows[0].reason)
        self.assertEqual(256.0, rows[0].memory_actual_mb)
        self.assertIsNone(rows[0].memory_usage_mb)
        # its XML is read (libvirt answers it without the QEMU monitor),
        # so a collector that never saw it before it froze knows its owner
        self.assertEqual(1, frozen.guest.xml_reads)
        self.assertEqual(2, rows[0].period)

    def test_unresponsive_guest_whose_xml_cannot_be_read(self):
        frozen = make_record('frozen', '<memballoon model="virtio"><stats '
                                       'period="2"/></memballoon>',
                             {'actual': 262144})
        frozen.monitor_busy = 12.5
        frozen.guest.fail = 'Domain not found'
        rows = memstats.MemoryStatsCollector(
            StatsSource([frozen]), clock=lambda: NOW).collect()
        self.assertEqual('unresponsive', rows[0].stats_state)
        self.assertIsNone(rows[0].period)


    def test_a_hung_guest_keeps_its_last_figures_for_a_while(self):
        # period 2, kept 3 periods: 6 s after its last report
        frozen = make_record('frozen', '<memballoon model="virtio"><stats '
                                   'period="2"/></memballoon>',
                             dict(FULL, last_update=NOW))
        clock = [NOW]
        collector = memstats.MemoryStatsCollector(
            StatsSource([frozen]), clock=lambda: clock[0], keep_periods=3)
        self.assertEqual('ok', collector.collect()[0].stats_state)
        frozen.monitor_busy = 3.0
        frozen.stats = {'actual': 131072}  # what libvirt still gives
        clock[0] = NOW + 5
        row = collector.collect()[0]
        self.assertEqual('unresponsive', row.stats_state)
        # its last report's figures and time, beside libvirt's own
        self.assertEqual(FULL['usable'], row.raw['usable'])
        self.assertEqual(NOW, row.raw['last_update'])
        self.assertEqual(131072, row.raw['actual'])
        self.assertIn('Its last figures, reported 5s ago, are served until '
                      '1s from now (3 periods after that report)', row.reason)
        # past the bound: its state only (and what libvirt still gives)
        clock[0] = NOW + 7
        row = collector.collect()[0]
        self.assertEqual({'actual': 131072}, row.raw)
        self.assertNotIn('last figures', row.reason)
        # not kept at all with 0
        collector.keep_periods = 0
        clock[0] = NOW + 1
        self.assertEqual({'actual': 131072}, collector.collect()[0].raw)

    def test_unresponsive_guest_keeps_what_was_read_of_it(self):
        frozen = make_record('frozen', '<memballoon model="virtio"><stats '
                                   'period="2"/></memballoon>', FULL)
        frozen.guest.xml = frozen.guest.xml.replace('<devices>',
                                                    META + '<devices>')
        clock = [NOW]
        collector = memstats.MemoryStatsCollector(StatsSource([frozen]),
                                                  clock=lambda: clock[0])
        self.assertEqual('ok', collector.collect()[0].stats_state)
        # its QEMU stops; a minute later the poll skips it
        frozen.monitor_busy = 60.0
        frozen.stats = {'actual': 262144}
        clock[0] += 60
        for _ in range(2):
            row = collector.collect()[0]
            self.assertEqual('unresponsive', row.stats_state)
            self.assertEqual(('Web 1', 'web', 2),
                             (row.display_name, row.project, row.period))
            self.assertEqual('alice', row.metadata.owner.username)
        self.assertEqual(1, frozen.guest.xml_reads)  # not read again


class CollectorStartingTest(test.TestCase):
    """A guest seen starting is 'starting' for two periods, then
    'no-guest-driver' if it never reported, dated at the look before (the
    earliest it may have started); a guest already running when the
    collector first looked is judged at once, unless its QEMU process's
    start can be read.
    """

    PERIOD_2 = '<memballoon model="virtio"><stats period="2"/></memballoon>'

    def setUp(self):
        super().setUp()
        self.clock = [NOW]
        self.host = StatsSource([])
        self.collector = memstats.MemoryStatsCollector(
            self.host, clock=lambda: self.clock[0])

    def test_guest_seen_starting(self):
        # boot --wait looks once before the guest exists
        self.host.records = [records.StatsRecord(
            None, 'new', None, False, {}, 'No guest named new.')]
        self.assertEqual('error', self.collector.collect(['new'])[0]
                         .stats_state)
        self.host.records = [make_record('new', self.PERIOD_2,
                                     {'actual': 262144})]
        self.clock[0] += 1
        row = self.collector.collect(['new'])[0]
        self.assertEqual('starting', row.stats_state, row.reason)
        self.assertIn('started 1s ago', row.reason)
        self.clock[0] += 2.9  # under two periods of 2 s since the look
        self.assertEqual('starting',
                         self.collector.collect(['new'])[0].stats_state)
        self.clock[0] += 0.2
        self.assertEqual('no-guest-driver',
                         self.collector.collect(['new'])[0].stats_state)

    def test_new_guest_between_full_polls(self):
        old = make_record('old', self.PERIOD_2, {'actual': 262144})
        self.host.records = [old]
        # running before the first poll: its start is unknown
        self.assertEqual('no-guest-driver',
                         self.collector.collect()[0].stats_state)
        self.host.records = [old, make_record('young', self.PERIOD_2,
                                          {'actual': 262144})]
        self.clock[0] += 1
        rows = {r.name: r.stats_state for r in self.collector.collect()}
        self.assertEqual({'old': 'no-guest-driver', 'young': 'starting'},
                         rows)

    def test_start_grace_is_settable(self):
        self.host.records = [make_record('slow', self.PERIOD_2,
                                         {'actual': 262144})]
        self.host.qemu_started_at = lambda name: NOW - 30
        self.assertEqual('no-guest-driver',
                         self.collector.collect()[0].stats_state)
        self.collector.start_grace = 60
        row = self.collector.collect()[0]
        self.assertEqual('starting', row.stats_state, row.reason)
        self.assertIn('started 30s ago', row.reason)

    def test_the_qemu_process_start_is_known_to_every_process(self):
        self.host.records = [make_record('old', self.PERIOD_2,
                                         {'actual': 262144})]
        self.host.qemu_started_at = lambda name: NOW - 1
        # first look, and already running: dated by its QEMU process
        row = self.collector.collect()[0]
        self.assertEqual('starting', row.stats_state)
        self.assertIn('started 1s ago', row.reason)


class CollectorCacheTest(test.TestCase):

    def test_cache_forgets_vanished_domains(self):
        records = [make_record(f'g{i}', '<memballoon model="none"/>', {})
                   for i in range(3)]
        host = StatsSource(records)
        collector = memstats.MemoryStatsCollector(host, clock=lambda: NOW)
        collector.collect()
        self.assertEqual(3, len(collector._known))
        host.records = records[:1]
        collector.collect(['g0'])  # a partial poll keeps the others
        self.assertEqual(3, len(collector._known))
        collector.collect()
        self.assertEqual(1, len(collector._known))


META = ('<metadata><nova:instance xmlns:nova="'
        'http://openstack.org/xmlns/libvirt/nova/1.1"><nova:name>Web 1'
        '</nova:name><nova:owner><nova:user uuid="u">alice</nova:user>'
        '<nova:project uuid="p">web</nova:project></nova:owner>'
        '</nova:instance></metadata>')


class CollectorMetadataTest(test.TestCase):

    def test_display_name_and_project_from_nova_metadata(self):
        with_meta = make_record('g1', '<memballoon model="none"/>', {})
        with_meta.guest.xml = with_meta.guest.xml.replace(
            '<devices>', META + '<devices>')
        without = make_record('g2', '<memballoon model="none"/>', {})
        rows = memstats.MemoryStatsCollector(
            StatsSource([with_meta, without]), clock=lambda: NOW).collect()
        self.assertEqual(('Web 1', 'web'),
                         (rows[0].display_name, rows[0].project))
        self.assertEqual('alice', rows[0].metadata.owner.username)
        self.assertEqual((None, None), (rows[1].display_name,
                                        rows[1].project))

    def test_guest_not_running_keeps_owner_without_figures(self):
        off = make_record('off', '<memballoon model="virtio"><stats period="2"'
                             '/></memballoon>',
                      {'actual': 262144, 'maximum': 262144}, active=False)
        off.guest.xml = off.guest.xml.replace('<devices>',
                                              META + '<devices>')
        row = memstats.MemoryStatsCollector(
            StatsSource([off]), clock=lambda: NOW).collect()[0]
        self.assertEqual('not-running', row.stats_state)
        self.assertEqual(('Web 1', 'web'), (row.display_name, row.project))
        self.assertEqual({}, row.raw)
        self.assertEqual(2, row.period)  # as defined
        self.assertIsNone(row.memory_actual_mb)
