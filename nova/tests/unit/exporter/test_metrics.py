"""Tests for nova.exporter.metrics: families from collector rows."""

import json
import os
import platform
import re
import shutil

import fixtures
import prometheus_client
from prometheus_client import registry as prom_registry
import testtools

from nova import test
from nova.exporter import metrics
from nova.tests import doc_table
from nova.tests import prometheus
from nova.tests.fixtures.exporter import RAW
from nova.tests.fixtures.exporter import Fixed
from nova.tests.fixtures.exporter import make_row
from nova.virt.libvirt import config
from nova.virt.libvirt import guest_state


def _samples(families):
    """{(metric sample name, domain label, state label): value}"""
    found = {}
    for family in families:
        for s in family.samples:
            found[(s.name, s.labels.get('domain'),
                   s.labels.get('libvirt_domain_memory_stats_state'))] = \
                s.value
    return found


def _text(families) -> str:
    registry = prom_registry.CollectorRegistry()
    registry.register(Fixed(families))
    return prometheus_client.generate_latest(registry).decode()


class FamiliesTest(test.TestCase):

    def test_figures_that_contradict_give_no_share(self):
        # usable above available (a stale report): never a negative or
        # above-100 used share, and memstats derives no usage
        raw = dict(RAW, usable=RAW['available'] + 1024)
        row = make_row('g', 'inconsistent', raw)
        found = _samples(metrics.families([row]))
        self.assertNotIn(('libvirt_domain_memory_stats_used_percent', 'g',
                          None), found)
        self.assertIn(('libvirt_domain_memory_stats_usable_bytes', 'g',
                       None), found)
        self.assertIsNone(row.as_dict()['used_mib'])
        self.assertEqual(1, found[('libvirt_domain_memory_stats_state', 'g',
                                   'inconsistent')])

    def test_hugetlb_counters(self):
        raw = dict(RAW, hugetlb_pgalloc=12, hugetlb_pgfail=3)
        found = _samples(metrics.families([make_row('g', 'ok', raw)]))
        self.assertEqual(12, found[(
            'libvirt_domain_memory_stats_hugetlb_pgalloc_total', 'g', None)])
        self.assertEqual(3, found[(
            'libvirt_domain_memory_stats_hugetlb_pgfail_total', 'g', None)])

    def test_openstack_info(self):
        meta = config.LibvirtConfigGuestMetaNovaInstance(
            name='Web 1',
            flavor=config.LibvirtConfigGuestMetaNovaFlavor(name='m1.small'),
            owner=config.LibvirtConfigGuestMetaNovaOwner(
                userid='u1', username='alice', projectid='p1',
                projectname='web'))
        row = make_row('g', 'ok', RAW)
        row.metadata = meta
        info = [f for f in metrics.families([row, make_row('bare', 'ok', RAW)])
                if f.name == 'libvirt_domain_openstack_info'][0]
        self.assertEqual(1, len(info.samples))  # only guests with metadata
        self.assertEqual(
            {'domain': 'g', 'instance_name': 'Web 1', 'instance_id': 'uuid-g',
             'flavor_name': 'm1.small', 'user_name': 'alice',
             'user_id': 'u1', 'project_name': 'web', 'project_id': 'p1'},
            info.samples[0].labels)
        self.assertEqual(1, info.samples[0].value)

    def test_full_row_in_bytes(self):
        got = _samples(metrics.families([make_row('g', 'ok', RAW)]))
        p = metrics.PREFIX
        self.assertEqual(262144 * 1024,
                         got[(p + 'current_balloon_bytes', 'g', None)])
        self.assertEqual(524288 * 1024, got[(p + 'maximum_bytes', 'g', None)])
        self.assertEqual(200000 * 1024,
                         got[(p + 'available_bytes', 'g', None)])
        self.assertEqual(150000 * 1024, got[(p + 'usable_bytes', 'g', None)])
        self.assertEqual(197520 * 1024, got[(p + 'rss_bytes', 'g', None)])
        self.assertEqual(2216 * 1024, got[(p + 'disk_caches_bytes', 'g',
                                            None)])
        self.assertEqual(3, got[(p + 'major_fault_total', 'g', None)])
        self.assertEqual(700, got[(p + 'minor_fault_total', 'g', None)])
        self.assertEqual(25.0, got[(p + 'used_percent', 'g', None)])
        self.assertEqual(1800000000, got[(
            p + 'last_update_timestamp_seconds', 'g', None)])
        self.assertEqual(2, got[(p + 'period_seconds', 'g', None)])
        self.assertEqual(1, got[(p + 'state', 'g', 'ok')])
        self.assertEqual(0, got[(p + 'state', 'g', 'stale')])

    def test_wanted_period_beside_the_period(self):
        drifted = make_row('drifted', 'ok', RAW, period=2)
        drifted.wanted_period = 10
        none = make_row('none-wanted', 'ok', RAW, period=2)
        none.wanted_period = 0
        got = _samples(metrics.families([drifted, none,
                                         make_row('untold', 'ok', RAW)]))
        p = metrics.PREFIX
        self.assertEqual(10, got[(p + 'wanted_period_seconds', 'drifted',
                                  None)])
        self.assertEqual(0, got[(p + 'wanted_period_seconds', 'none-wanted',
                                 None)])
        self.assertNotIn((p + 'wanted_period_seconds', 'untold', None), got)

    def test_every_state_is_a_state_set_member(self):
        rows = [make_row(f'g-{s}', s) for s in guest_state.STATES]
        got = _samples(metrics.families(rows))
        for state in guest_state.STATES:
            for other in guest_state.STATES:
                self.assertEqual(
                    int(state == other),
                    got[(metrics.PREFIX + 'state', f'g-{state}', other)])

    def test_absent_figures_are_absent_not_zero(self):
        # a balloon-disabled guest: only actual, maximum and rss
        row = make_row('off', 'balloon-disabled',
                   {'actual': 262144, 'maximum': 262144, 'rss': 1000,
                    'last_update': 0}, period=None)
        names = {name for name, domain, _ in
                 _samples(metrics.families([row]))}
        p = metrics.PREFIX
        self.assertIn(p + 'rss_bytes', names)
        for absent in ('available_bytes', 'usable_bytes', 'unused_bytes',
                       'used_percent', 'last_update_timestamp_seconds',
                       'period_seconds', 'major_fault_total'):
            self.assertNotIn(p + absent, names)

    def test_not_running_guest_has_only_its_state(self):
        row = make_row('down', 'not-running', {}, period=None)
        names = {name for name, _, _ in _samples(metrics.families([row]))}
        self.assertEqual({metrics.PREFIX + 'state'}, names)

    def test_usage_needs_available(self):
        row = make_row('g', 'ok', {'available': 0, 'usable': 0})
        names = {name for name, _, _ in _samples(metrics.families([row]))}
        self.assertNotIn(metrics.PREFIX + 'used_percent', names)

    def test_kept_label_sets_give_the_same_text(self):
        kept = {}
        first = [make_row('a', 'ok', RAW), make_row('b', 'stale', RAW)]
        first[0].metadata = config.LibvirtConfigGuestMetaNovaInstance(
            name='web-a')
        self.assertEqual(_text(metrics.families(first)),
                         _text(metrics.families(first, kept)))
        self.assertEqual({'a', 'b'}, set(kept))
        a, b = kept['a'], kept['b']
        a_states, a_info = a.state_labels, a.info_labels

        # a's state and metadata hold, b's state changes, c is new, d gone
        second = [make_row('a', 'ok', RAW), make_row('b', 'ok', RAW),
                  make_row('c', 'not-running')]
        second[0].metadata = first[0].metadata
        families = metrics.families(second, kept)
        text = _text(families)
        self.assertEqual(_text(metrics.families(second)), text)
        self.assertIn('libvirt_domain_memory_stats_state{domain="b",'
                      'libvirt_domain_memory_stats_state="ok"} 1.0', text)
        self.assertIn('libvirt_domain_memory_stats_state{domain="b",'
                      'libvirt_domain_memory_stats_state="stale"} 0.0', text)
        # reused, not rebuilt: the same dicts, which the encoder writes
        # once (encoding.encode's texts)
        self.assertIs(a, kept['a'])
        self.assertIs(a_states, kept['a'].state_labels)
        self.assertIs(a_info, kept['a'].info_labels)
        self.assertIs(b.state_labels, kept['b'].state_labels)
        self.assertEqual('ok', kept['b'].state)
        self.assertEqual({'a', 'b', 'c'}, set(kept))
        # every figure of a guest shares its one label set
        by_family = {f.name: f for f in families}
        self.assertIs(
            a.labels, by_family[metrics.PREFIX + 'rss_bytes'].label_sets[0])

        # new metadata (its XML read again): a new info label set
        third = [make_row('a', 'ok', RAW)]
        third[0].metadata = config.LibvirtConfigGuestMetaNovaInstance(
            name='web-a2')
        text = _text(metrics.families(third, kept))
        self.assertIn('instance_name="web-a2"', text)
        self.assertIsNot(a_info, kept['a'].info_labels)

    def test_guest_family_samples_are_its_columns(self):
        family = metrics.GuestFamily('x_total_things', 'help', 'counter',
                                     'x_total_things_total')
        family.add({'domain': 'a'}, 3)
        self.assertEqual(
            [('x_total_things_total', {'domain': 'a'}, 3, None, None,
              None)], [tuple(s) for s in family.samples])
        with testtools.ExpectedException(TypeError, '.*columns.*'):
            family.samples = [family.samples[0]]
        self.assertEqual(1, len(family.samples))

    def test_host_families(self):
        got = _samples(metrics.host_families(False, 0.25))
        self.assertEqual(0, got[('libvirt_up', None, None)])
        self.assertEqual(0.25, got[(
            'libvirt_memory_stats_scrape_duration_seconds', None, None)])

    def test_build_info(self):
        family = metrics.build_info('1.2.3')
        self.assertEqual(1, len(family.samples))
        sample = family.samples[0]
        self.assertEqual(('nova_libvirt_exporter_build_info', 1),
                         (sample.name, sample.value))
        self.assertEqual({'version': '1.2.3',
                          'pythonversion': platform.python_version()},
                         sample.labels)

    def test_every_family_has_help_and_a_unit_or_count(self):
        for family in metrics.families([make_row('g', 'ok', RAW)]):
            self.assertTrue(family.documentation, family.name)
            self.assertTrue(
                family.type == 'counter' or
                family.name.endswith(('_bytes', '_seconds', '_percent',
                                      '_state', '_info', '_enabled')),
                family.name)

    def test_promtool_accepts_the_text(self):
        reason = prometheus.missing()
        if reason:
            self.fail(reason)
        rows = [make_row(f'g-{s}', s, RAW if s == 'ok' else {})
                for s in guest_state.STATES]
        text = _text(metrics.families(rows) +
                     metrics.host_families(True, 0.01) +
                     [metrics.build_info('1.2.3')])
        rc, out = prometheus.promtool('check', 'metrics', stdin=text)
        self.assertEqual(0, rc, out)


class DocumentedRulesTest(test.TestCase):
    """The scrape configuration and alerting rules in the admin guide."""

    def test_promtool_accepts_them(self):
        reason = prometheus.missing()
        if reason:
            self.fail(reason)
        admin = os.path.join(doc_table.ROOT, 'doc', 'source', 'admin')
        rules = os.path.join(admin, 'exporter-alerts.yml')
        rc, out = prometheus.promtool('check', 'rules', rules)
        self.assertEqual(0, rc, out)
        self.assertIn('SUCCESS: 9 rules found', out)
        rc, out = prometheus.promtool(
            'check', 'config', os.path.join(admin, 'exporter-scrape.yml'))
        self.assertEqual(0, rc, out)
        with open(rules) as f:
            text = f.read()
        for state in ('stale', 'no-stats-period', 'unresponsive'):
            self.assertIn(f'libvirt_domain_memory_stats_state="{state}"',
                          text)
        self.assertIn('libvirt_up == 0', text)

    def test_each_alert_fires_for_the_guest_it_should(self):
        # promtool's own rule unit tests: exporter-alerts-test.yml
        reason = prometheus.missing()
        if reason:
            self.fail(reason)
        tests = os.path.join(doc_table.ROOT, 'doc', 'source', 'admin',
                             'exporter-alerts-test.yml')
        rc, out = prometheus.promtool('test', 'rules', tests)
        self.assertEqual(0, rc, out)
        self.assertIn('SUCCESS', out)
        with open(tests) as f:
            text = f.read()
        for alert in ('LibvirtDown', 'GuestMemoryStatsStale',
                      'GuestWithoutStatsPeriod', 'GuestUnresponsive',
                      'GuestReportsNoFigures', 'GuestStatsPeriodDrift',
                      'LibvirtPollSlow', 'NovaLibvirtExporterDown',
                      'NovaLibvirtExportersAbsent'):
            self.assertIn(f'alertname: {alert}', text)


class FleetRulesTest(test.TestCase):
    """The fleet's scrape configuration and recording rules in the admin
    guide, as promtool checks and tests them.
    """

    ADMIN = os.path.join(doc_table.ROOT, 'doc', 'source', 'admin')

    def setUp(self):
        super().setUp()
        reason = prometheus.missing()
        if reason:
            self.fail(reason)

    def test_promtool_accepts_the_fleet_configuration(self):
        # Filled in as the guide says, for each of 4 shards, with and
        # without client certificates; promtool checks that the TLS files
        # it names exist: the same configuration, pointed at files of the
        # test's.
        tmp = self.useFixture(fixtures.TempDir()).path
        for name in ('nova-libvirt-ca.crt', 'prometheus.crt',
                     'prometheus.key', 'nova-libvirt.password'):
            open(os.path.join(tmp, name), 'w').close()
        for name in ('exporter-fleet-rules.yml', 'exporter-alerts.yml',
                     'exporter-pressure-rules.yml'):
            shutil.copy(os.path.join(self.ADMIN, name), tmp)
        config = os.path.join(tmp, 'prometheus.yml')
        for shard in range(4):
            for certs in (False, True):
                prometheus.render_fleet_config(shard, 4, certs, config)
                with open(config) as f:
                    text = f.read()
                self.assertEqual(certs, bool(re.search(
                    r'^ +cert_file:', text, re.MULTILINE)), text)
                self.assertIn(f'prometheus_shard: "{shard}"', text)
                self.assertIn(f'regex: "{shard}"', text)
                self.assertIn('modulus: 4', text)
                self.assertNotIn('SHARD_', text)
                text = text.replace('/etc/prometheus/', tmp + '/')
                with open(config, 'w') as f:
                    f.write(text)
                rc, out = prometheus.promtool('check', 'config', config)
                self.assertEqual(0, rc, out)
                self.assertIn('SUCCESS: 16 rules found', out)
                self.assertIn('SUCCESS: 9 rules found', out)
                self.assertIn('SUCCESS: 12 rules found', out)
        for needed in ('role: hypervisor', 'action: hashmod',
                       '__meta_openstack_hypervisor_state',
                       '__meta_openstack_hypervisor_type',
                       '__meta_openstack_hypervisor_hostname',
                       'application_credential_id', 'port: 9179',
                       'basic_auth:', 'tls_config:'):
            self.assertIn(needed, text)
        # the template itself, not filled in, is refused
        with open(os.path.join(self.ADMIN, 'exporter-fleet-scrape.yml')) as f:
            text = f.read().replace('/etc/prometheus/', tmp + '/')
        with open(config, 'w') as f:
            f.write(text)
        rc, out = prometheus.promtool('check', 'config', config)
        self.assertNotEqual(0, rc, out)
        self.assertIn('cannot unmarshal !!str `SHARD_C', out)

    def test_each_recording_rule_gives_what_the_guests_add_up_to(self):
        tests = os.path.join(self.ADMIN, 'exporter-fleet-rules-test.yml')
        rc, out = prometheus.promtool('test', 'rules', tests)
        self.assertEqual(0, rc, out)
        self.assertIn('SUCCESS', out)
        with open(os.path.join(self.ADMIN, 'exporter-fleet-rules.yml')) as f:
            records = re.findall(r'- record: (\S+)', f.read())
        with open(tests) as f:
            text = f.read()
        for record in records:  # every rule has a test
            self.assertIn(f'- expr: {record}\n', text)


class PressureRulesTest(test.TestCase):
    """Is a guest short of memory: KubeVirt's definition as recording
    rules, alerts per host and per project, as promtool tests them
    (exporter-pressure-rules-test.yml: pressure from faults, from swap,
    neither, a guest without figures, a hung guest's kept figures).
    """

    ADMIN = FleetRulesTest.ADMIN

    def test_each_rule_and_alert_as_its_tests_say(self):
        reason = prometheus.missing()
        if reason:
            self.fail(reason)
        rules = os.path.join(self.ADMIN, 'exporter-pressure-rules.yml')
        tests = os.path.join(self.ADMIN, 'exporter-pressure-rules-test.yml')
        rc, out = prometheus.promtool('check', 'rules', rules)
        self.assertEqual(0, rc, out)
        rc, out = prometheus.promtool('test', 'rules', tests)
        self.assertEqual(0, rc, out)
        self.assertIn('SUCCESS', out)
        with open(rules) as f:
            text = f.read()
        with open(tests) as f:
            tested = f.read()
        for record in re.findall(r'- record: (\S+)', text):
            self.assertIn(f'- expr: {record}\n', tested)
        for alert in re.findall(r'- alert: (\S+)', text):
            self.assertIn(f'alertname: {alert}\n', tested)
        # KubeVirt's thresholds, named once
        for threshold in ('vector(0.05)', 'vector(5)', 'vector(1048576)'):
            self.assertEqual(1, text.count(threshold))


class FleetDashboardTest(test.TestCase):
    """The fleet dashboard's shape; its queries run against a real
    Prometheus in nova/tests/functional/operator/test_fleet.py.
    """

    def test_structure(self):
        path = os.path.join(doc_table.ROOT, 'doc', 'source', 'admin',
                            'exporter-fleet-dashboard.json')
        with open(path) as f:
            dashboard = json.load(f)
        self.assertTrue(dashboard['uid'] and dashboard['title'])
        self.assertEqual(['datasource'], [
            v['name'] for v in dashboard['templating']['list']])
        ids = [p['id'] for p in dashboard['panels']]
        self.assertEqual(len(ids), len(set(ids)))
        exprs = ' '.join(t['expr'] for p in dashboard['panels']
                         for t in p['targets'])
        # on the recording rules: per project, per host, ranked, by state
        for record in ('project:libvirt_domain_memory_used_bytes:sum',
                       'instance:libvirt_domain_memory_used_bytes:sum',
                       'instance:libvirt_domain_memory_used:ratio',
                       'libvirt_domain_memory_stats_state:count'):
            self.assertIn(record, exprs)
        for panel in dashboard['panels']:
            self.assertEqual('${datasource}', panel['datasource']['uid'])
            self.assertEqual({'x', 'y', 'w', 'h'}, set(panel['gridPos']))
