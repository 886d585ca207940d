"""nova-libvirt-exporter on real QEMU, scraped by a real Prometheus."""

import functools
import json
import os
import re
import shutil
import time
import urllib.parse
import urllib.request

import fixtures

from nova import test
from nova import testimage
from nova.cmd import exporter as exporter_cmd
import nova.conf
from nova.objects import instance as instance_obj
from nova.tests import prometheus
from nova.tests.fixtures import exporter as fakeexporter
from nova.tests.fixtures import prometheus_server
from nova.tests.functional.libvirt import base
from nova.virt.libvirt import driver as libvirt_driver
from nova.virt.libvirt import memstats

CONF = nova.conf.CONF
MIB = 1024 * 1024
ADMIN = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))), 'doc', 'source', 'admin')


_get = prometheus_server.get


class ExporterTestCase(base.RealQemuTestCase):

    def start_exporter(self):
        self.flags(listen_port=0, group='exporter')
        # a read-only connection of its own to the tests' embedded driver
        reader = libvirt_driver.LibvirtDriver(read_only=True)
        self.addCleanup(lambda: reader.host.close())
        svc = exporter_cmd.build(CONF, reader)
        svc.start()
        self.addCleanup(svc.stop)
        return svc

    def scrape(self, svc) -> str:
        return _get(f'http://127.0.0.1:{svc.port}/metrics')

    def query(self, api: str, promql: str) -> list:
        url = api + '/api/v1/query?' + urllib.parse.urlencode(
            {'query': promql})
        body = json.loads(_get(url))
        self.assertEqual('success', body['status'], body)
        return body['data']['result']

    def value(self, api: str, promql: str):
        result = self.query(api, promql)
        return float(result[0]['value'][1]) if result else None


class PrometheusScrapeTest(ExporterTestCase):

    def start_prometheus(self, target_port: int) -> str:
        return self.useFixture(prometheus_server.Prometheus(
            '  - job_name: nova-libvirt\n'
            '    scrape_interval: 1s\n'
            '    scrape_timeout: 1s\n'
            '    static_configs:\n'
            f"      - targets: ['127.0.0.1:{target_port}']\n")).api

    def test_prometheus_scrapes_guest_figures(self):
        self.boot('ft-exp-on', period=2)
        self.boot('ft-exp-off', period=0)
        self.wait_for_console(testimage.READY_LINE)
        svc = self.start_exporter()
        api = self.start_prometheus(svc.port)

        on = 'domain="ft-exp-on"'
        available = self.wait_for(
            'Prometheus to hold the guest figures',
            lambda: self.value(
                api, f'libvirt_domain_memory_stats_available_bytes{{{on}}}'),
            60)
        usable = self.value(
            api, f'libvirt_domain_memory_stats_usable_bytes{{{on}}}')
        row = memstats.MemoryStatsCollector(self.driver.host).collect(
            ['ft-exp-on'])[0]
        self.assertEqual('ok', row.stats_state)
        self.assertEqual(row.memory_available_mb, round(available / MIB, 2))
        # usable moves a little between two polls
        self.assertAlmostEqual(row.memory_usage_mb,
                               (available - usable) / MIB, delta=4)
        self.assertEqual(2, self.value(
            api, f'libvirt_domain_memory_stats_period_seconds{{{on}}}'))
        self.assertEqual(1, self.value(api, 'libvirt_up'))

        off = 'domain="ft-exp-off"'
        self.assertEqual(1, self.value(
            api, f'libvirt_domain_memory_stats_state{{{off},'
                 'libvirt_domain_memory_stats_state="balloon-disabled"}'))
        for absent in ('available_bytes', 'usable_bytes', 'unused_bytes',
                       'used_percent', 'period_seconds'):
            self.assertEqual([], self.query(
                api, f'libvirt_domain_memory_stats_{absent}{{{off}}}'),
                absent)
        self.assertIsNotNone(self.value(
            api, f'libvirt_domain_memory_stats_rss_bytes{{{off}}}'))

        rc, out = prometheus.promtool('check', 'metrics',
                                      stdin=self.scrape(svc))
        self.assertEqual(0, rc, out)


class MemoryPressureTest(ExporterTestCase):
    """Real pressure on a real guest: the test image's hog mode holds 120
    MiB of tmpfs and reads it over and over, with swap on zram; its balloon
    is squeezed to leave it 100 MiB of its 256. A real Prometheus scraping
    the exporter, with the admin guide's pressure rules, says it is short
    of memory (KubeVirt's definition), and that a guest beside it with
    room is not.

    What software QEMU shows here: available under 5 % (about 3 %) and swap
    traffic (tens of MiB a second): pressure by the swap half of the
    definition. Swap is zram in the guest's own memory, so swapped-out
    pages come back mostly from the swap cache, as minor faults: major
    faults stay few (under the 5 a second of the faults half), and that
    half is shown by the promtool tests only.
    """

    HOG_MIB, LEFT_MIB = 120, 100

    def test_a_squeezed_guest_is_short_of_memory_and_said_so(self):
        self.flags(mem_stats_period_seconds=2, group='libvirt')
        self.addCleanup(self._delete_and_check, 'ft-hog')
        image = self.image_meta()
        image.os_command_line = self.images['balloon'].hog_cmdline(
            self.HOG_MIB)
        hog = self.driver.spawn(
            instance_obj.Instance('ft-hog', memory_mb=256), image)
        self.boot('ft-roomy', period=2)
        self.console_log = os.path.join(self.state_path, 'instances',
                                        hog.uuid, 'console.log')
        self.wait_for_console(testimage.HOG_READY, 120)
        hog.set_balloon(self.LEFT_MIB * 1024)

        svc = self.start_exporter()
        work = self.useFixture(fixtures.TempDir()).path
        shutil.copy(os.path.join(ADMIN, 'exporter-pressure-rules.yml'), work)
        api = self.useFixture(prometheus_server.Prometheus(
            '  - job_name: nova-libvirt\n'
            '    scrape_interval: 1s\n'
            '    scrape_timeout: 1s\n'
            '    static_configs:\n'
            f"      - targets: ['127.0.0.1:{svc.port}']\n",
            extra='global:\n  evaluation_interval: 1s\n'
                  f'rule_files:\n  - {work}/exporter-pressure-rules.yml\n'
        )).api

        def pressure(domain):
            return self.value(api, 'domain:libvirt_domain_memory_pressure:'
                                   f'bool{{domain="{domain}"}}')
        on = 'domain="ft-hog"'

        def judged():
            """The rules' figures once they agree at one instant: the
            squeezed guest short of memory, the other not, the host's count
            one (each rule is evaluated on its own, a second apart).
            """
            found = {
                'hog': pressure('ft-hog'), 'roomy': pressure('ft-roomy'),
                'count': self.value(
                    api, 'instance:libvirt_domain_memory_pressure:count'),
                'ratio': self.value(api, 'domain:libvirt_domain_memory_'
                                         f'available:ratio{{{on}}}'),
                'faults': self.value(api, 'domain:libvirt_domain_memory_'
                                          f'major_faults:rate5m{{{on}}}'),
                'swap': self.value(api, 'domain:libvirt_domain_memory_'
                                        f'swap_bytes:rate5m{{{on}}}')}
            if (found['hog'], found['roomy'], found['count']) == (1, 0, 1):
                return found
            return None
        found = self.wait_for('the squeezed guest under pressure, the '
                              'other not', judged, 120)
        self.assertLess(found['ratio'], 0.05)
        # swap traffic, here: zram in the guest's memory. Major faults are
        # recorded but few (a page found in the swap cache is a minor one),
        # so the faults half of the definition is not what this shows
        self.assertGreater(found['swap'], MIB)
        self.assertIsNotNone(found['faults'])


class FrozenGuestScrapeTest(ExporterTestCase):
    """Scrapes stay fast while one guest's QEMU is stopped; its last
    figures stay, with their time, for [libvirt]
    mem_stats_keep_unresponsive_periods periods after its last report,
    then only its state.
    """

    def test_scrapes_stay_fast(self):
        self.flags(mem_stats_poll_timeout=3, group='libvirt')
        # kept 5 periods (10 s) after the last report
        self.flags(mem_stats_keep_unresponsive_periods=5, group='libvirt')
        self.boot('ft-exp-frozen', period=2)
        self.boot('ft-exp-healthy', period=2)
        self.wait_for_console(testimage.READY_LINE)
        svc = self.start_exporter()
        ok = ('libvirt_domain_memory_stats_state{{domain="{}",'
              'libvirt_domain_memory_stats_state="{}"}} 1.0')
        self.wait_for(
            'both guests ok',
            lambda: all(ok.format(n, 'ok') in self.scrape(svc)
                        for n in ('ft-exp-frozen', 'ft-exp-healthy')), 60)
        last = re.compile(
            r'libvirt_domain_memory_stats_last_update_timestamp_seconds'
            r'\{domain="ft-exp-frozen"\} (\S+)')
        self.freeze('ft-exp-frozen')
        before = float(last.search(self.scrape(svc)).group(1))
        kept = gone = 0
        for scrape in range(30):
            start = time.monotonic()
            text = self.scrape(svc)
            elapsed = time.monotonic() - start
            self.assertLess(elapsed, 3.5, f'scrape {scrape}: {elapsed:.1f}s')
            self.assertIn(ok.format('ft-exp-healthy', 'ok'), text)
            self.assertIn('libvirt_domain_memory_stats_available_bytes{'
                          'domain="ft-exp-healthy"}', text)
            self.assertIn('libvirt_up 1.0', text)
            if ok.format('ft-exp-frozen', 'unresponsive') not in text:
                continue  # not yet skipped: the poll that meets it waits
            found = last.search(text)
            if found is not None:
                # its last report's figures and time, not a new one
                self.assertEqual(before, float(found.group(1)))
                self.assertIn('libvirt_domain_memory_stats_available_bytes{'
                              'domain="ft-exp-frozen"}', text)
                self.assertLessEqual(time.time() - before, 10 + 3)
                kept += 1
            else:
                self.assertGreaterEqual(time.time() - before, 10)
                self.assertNotIn('libvirt_domain_memory_stats_available_'
                                 'bytes{domain="ft-exp-frozen"}', text)
                gone += 1
                if gone >= 2:
                    break
            time.sleep(1)
        self.assertGreater(kept, 0)
        self.assertEqual(2, gone)


class PrometheusAccessTest(test.TestCase):
    """A real Prometheus scrapes over TLS with a client certificate and
    basic auth, as the web configuration file asks; a wrong password and
    an unknown client certificate are refused.
    """

    def test_tls_client_certificate_and_basic_auth(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        ca = fakeexporter.make_cert(tmp, 'ca')
        server = fakeexporter.make_cert(tmp, 'server', ca=ca)
        client = fakeexporter.make_cert(tmp, 'client', ca=ca)
        stranger = fakeexporter.make_cert(tmp, 'stranger')  # own CA
        web = os.path.join(tmp, 'web.yml')
        with open(web, 'w') as f:
            f.write(f'tls_server_config:\n  cert_file: {server[0]}\n'
                    f'  key_file: {server[1]}\n  client_ca_file: {ca[0]}\n'
                    '  client_auth_type: RequireAndVerifyClientCert\n'
                    'basic_auth_users:\n  prometheus: '
                    f'{fakeexporter.bcrypt_hash("s3cret")}\n')
        self.flags(connection_uri='test:///default', group='libvirt')
        self.flags(listen_port=0, web_config_file=web, group='exporter')
        svc = exporter_cmd.build(CONF)
        svc.start()
        self.addCleanup(svc.stop)

        def job(name, password, cert):
            return (f'  - job_name: {name}\n    scheme: https\n'
                    '    scrape_interval: 1s\n    scrape_timeout: 1s\n'
                    f'    basic_auth:\n      username: prometheus\n'
                    f'      password: {password}\n'
                    f'    tls_config:\n      ca_file: {ca[0]}\n'
                    f'      cert_file: {cert[0]}\n'
                    f'      key_file: {cert[1]}\n'
                    '    static_configs:\n'
                    f"      - targets: ['127.0.0.1:{svc.port}']\n")
        prom = self.useFixture(prometheus_server.Prometheus(
            job('good', 's3cret', client) + job('wrong-password', 'nope',
                                                client) +
            job('stranger', 's3cret', stranger)))
        targets = self.wait_for(
            'the three targets scraped', lambda: (lambda t: t if len(
                t) == 3 and all(h != 'unknown' for h, _ in t.values())
                else None)(prom.targets()), 60)
        self.assertEqual('up', targets['good'][0], targets['good'][1])
        self.assertEqual('down', targets['wrong-password'][0])
        # (not '401' alone: a random port can hold those digits)
        self.assertIn('HTTP status 401', targets['wrong-password'][1])
        self.assertEqual('down', targets['stranger'][0])
        # refused by TLS, before any HTTP
        self.assertIn('tls:', targets['stranger'][1])
        self.assertNotIn('HTTP status', targets['stranger'][1])


DASHBOARD = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))), 'doc', 'source', 'admin',
    'exporter-dashboard.json')


class DashboardTest(ExporterTestCase):
    """The shipped Grafana dashboard: every panel's query returns data from
    a real Prometheus scraping the real exporter over real guests, and the
    'missing' table names the guests it should. (Grafana is not packaged
    for Debian here: the JSON's structure is checked below instead.)
    """

    # What Grafana puts for its variables: all hosts and guests.
    VARIABLES = {'$instance': '.+', '$domain': '.+',
                 '$__rate_interval': '1m'}

    def _targets(self, dashboard):
        for panel in dashboard['panels']:
            for target in panel['targets']:
                yield panel, target

    def test_structure(self):
        with open(DASHBOARD) as f:
            dashboard = json.load(f)
        self.assertTrue(dashboard['uid'] and dashboard['title'])
        names = {v['name'] for v in dashboard['templating']['list']}
        self.assertEqual({'datasource', 'instance', 'domain'}, names)
        ids = [p['id'] for p in dashboard['panels']]
        self.assertEqual(len(ids), len(set(ids)))
        for panel in dashboard['panels']:
            self.assertEqual({'x', 'y', 'w', 'h'}, set(panel['gridPos']))
            self.assertEqual('${datasource}', panel['datasource']['uid'])
            self.assertTrue(panel['targets'], panel['title'])
        for panel, target in self._targets(dashboard):
            self.assertTrue(target['refId'] and target['expr'])
            for word in target['expr'].split('$')[1:]:
                name = word.split('"')[0].split(']')[0].split('}')[0]
                self.assertIn(name, names | {'__rate_interval'},
                              panel['title'])

    def test_every_panel_returns_data(self):
        self.boot('ft-dash-on', period=2)
        self.boot('ft-dash-off', period=0)
        self.wait_for_console(testimage.READY_LINE)
        svc = self.start_exporter()
        prom = self.useFixture(prometheus_server.Prometheus(
            '  - job_name: nova-libvirt\n'
            '    scrape_interval: 1s\n'
            '    scrape_timeout: 1s\n'
            '    static_configs:\n'
            f"      - targets: ['127.0.0.1:{svc.port}']\n"))

        def query(promql):
            url = prom.api + '/api/v1/query?' + urllib.parse.urlencode(
                {'query': promql})
            body = json.loads(_get(url))
            self.assertEqual('success', body['status'], body)
            return body['data']['result']

        # the guest reports, and there are samples enough for deriv()
        self.wait_for('figures and a few scrapes in Prometheus', lambda: (
            query('libvirt_domain_memory_stats_available_bytes'
                  '{domain="ft-dash-on"}') and
            query('count_over_time(libvirt_up[1m]) >= 4')), 60)
        with open(DASHBOARD) as f:
            dashboard = json.load(f)
        for panel, target in self._targets(dashboard):
            expr = target['expr']
            for name, value in self.VARIABLES.items():
                expr = expr.replace(name, value)
            # asked until it has data: a loaded host scrapes late
            result = self.wait_for(f'{panel["title"]}: {expr} to give data',
                                   functools.partial(query, expr), 60)
            if panel['title'] == 'Guests whose figures are missing':
                missing = {r['metric']['domain'] for r in result}
                self.assertIn('ft-dash-off', missing)
                self.assertNotIn('ft-dash-on', missing)
        # the variables' label_values() lookups
        for label, series, wanted in (
                ('instance', 'libvirt_up', f'127.0.0.1:{svc.port}'),
                ('domain', 'libvirt_domain_memory_stats_state',
                 'ft-dash-on')):
            url = (f'{prom.api}/api/v1/label/{label}/values?' +
                   urllib.parse.urlencode({'match[]': series}))
            self.assertIn(wanted, json.loads(_get(url))['data'])
