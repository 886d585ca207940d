"""A fleet in small: K exporters as K hosts, summed by a real Prometheus.

Three ``nova-libvirt-exporter`` processes, each on its own loopback address
(127.0.0.2 to 127.0.0.4, as three compute hosts), read the test's libvirtd,
whose real guests carry Nova's metadata for two projects: a reporting
guest of each, a guest without a balloon driver, and one whose QEMU is
stopped. A real Prometheus finds the exporters through ``file_sd_configs``
(``openstack_sd_configs`` needs a Nova API, which we do not run) and
evaluates ``exporter-fleet-rules.yml``; the per-host and per-project sums
must equal what the guests' own figures add up to, the per-state counts
must name the right guests, and every panel of the fleet dashboard must
return data.
"""

import functools
import json
import os
import shutil
import urllib.parse
import urllib.request

from nova import testimage
from nova.tests import doc_table
from nova.tests.fixtures import prometheus_server
from nova.tests.functional.operator import base

ADMIN = os.path.join(doc_table.ROOT, 'doc', 'source', 'admin')
HOSTS = ('127.0.0.2', '127.0.0.3', '127.0.0.4')
MIB = 1024 * 1024


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=15) as response:
        return json.loads(response.read().decode())


class FleetTest(base.ExporterTestCase):

    def boot_guest(self, name: str, project: str, variant: str) -> None:
        self.addCleanup(self._destroy, name)
        kernel, initrd = self.images[variant]
        period = self.write_conf('period-2.conf', '[libvirt]\n'
                                 'mem_stats_period_seconds = 2\n')
        self.nova_libvirt('boot', name, '--kernel', kernel, '--initrd',
                          initrd, '--cmdline', testimage.CMDLINE,
                          '--project-name', project, conf_files=[period])

    def query(self, promql: str) -> list:
        body = _get(self.prometheus + '/api/v1/query?' +
                    urllib.parse.urlencode({'query': promql}))
        self.assertEqual('success', body['status'], body)
        return body['data']['result']

    def by(self, promql: str, *labels) -> dict:
        return {tuple(r['metric'].get(label) for label in labels):
                float(r['value'][1]) for r in self.query(promql)}

    def test_sums_and_states_of_three_hosts(self):
        names = {'p1': base.PREFIX + 'fl-p1', 'p2': base.PREFIX + 'fl-p2',
                 'nodrv': base.PREFIX + 'fl-nodrv',
                 'frozen': base.PREFIX + 'fl-frozen'}
        for key, project, variant in (('p1', 'one', 'balloon'),
                                      ('p2', 'two', 'balloon'),
                                      ('nodrv', 'one', 'nodriver'),
                                      ('frozen', 'two', 'balloon')):
            self.boot_guest(names[key], project, variant)
        reporting = [names['p1'], names['p2'], names['frozen']]
        self.wait_for('the guests to report', lambda: all(
            row['stats_state'] == 'ok'
            for row in self.memstats(*reporting).values()), 90)
        self.freeze(names['frozen'])

        port = prometheus_server.free_port()
        for address in HOSTS:
            self.start_exporter(address=address, port=port)
        targets = [f'{address}:{port}' for address in HOSTS]
        sd = os.path.join(self.work, 'targets.json')
        with open(sd, 'w') as f:
            json.dump([{'targets': targets, 'labels': {}}], f)
        for name in ('exporter-fleet-rules.yml',
                     'exporter-pressure-rules.yml'):
            shutil.copy(os.path.join(ADMIN, name), self.work)
        prometheus = self.useFixture(prometheus_server.Prometheus(
            '  - job_name: nova-libvirt\n'
            '    scrape_interval: 1s\n'
            '    scrape_timeout: 1s\n'
            '    file_sd_configs:\n'
            f'      - files: [{sd}]\n',
            extra='global:\n  evaluation_interval: 1s\n'
                  f'rule_files:\n  - {self.work}/'
                  'exporter-fleet-rules.yml\n'
                  f'  - {self.work}/exporter-pressure-rules.yml\n'))
        self.prometheus = prometheus.api

        # Each host sees the stopped QEMU as unresponsive and the guest
        # without a driver as such; then every rule group (each evaluated
        # on its own) has recorded every host and project.
        def settled():
            counts = self.by('instance:libvirt_domain_memory_stats_state'
                             ':count', 'instance',
                             'libvirt_domain_memory_stats_state')
            states = all(counts.get((t, state)) == n for t in targets
                         for state, n in (('ok', 2), ('unresponsive', 1),
                                          ('no-guest-driver', 1)))
            hosts = self.by('instance:libvirt_domain_memory_used_bytes:sum',
                            'instance')
            projects = self.by('project:libvirt_domain_memory_used_bytes'
                               ':sum', 'project_name')
            return (states and set(hosts) == {(t,) for t in targets} and
                    set(projects) == {('one',), ('two',)})
        self.wait_for('every host\'s states and sums in the recording '
                      'rules', settled, 90)

        # The per-state counts name the right guests.
        for state, name in (('unresponsive', names['frozen']),
                            ('no-guest-driver', names['nodrv'])):
            found = self.by(f'libvirt_domain_memory_stats_state{{'
                            f'libvirt_domain_memory_stats_state="{state}"}}'
                            ' == 1', 'instance', 'domain')
            self.assertEqual({(t, name) for t in targets}, set(found))

        # Per host and per project: the guests' own figures, added up by
        # PromQL at one instant, against the recorded sums. Rule groups are
        # evaluated each on its own, a second apart, so a sum may lag its
        # inputs by an evaluation: compare until they agree (or fail with
        # the last difference). Guest figures move a little between a
        # scrape and an evaluation (an idle guest's caches): a few MiB.
        differences = []

        def sums_agree():
            differences.clear()
            used = self.by('libvirt_domain_memory_stats_available_bytes - '
                           'libvirt_domain_memory_stats_usable_bytes',
                           'instance', 'domain')
            want = {(t, n) for t in targets
                    for n in (names['p1'], names['p2'])}
            if set(used) != want:
                differences.append(f'guests with figures: {set(used)}')
            hosts = self.by('instance:libvirt_domain_memory_used_bytes:sum',
                            'instance')
            for host in targets:
                expected = sum(v for (h, _), v in used.items() if h == host)
                got = hosts.get((host,))
                if got is None or abs(expected - got) > 8 * MIB:
                    differences.append(f'{host}: used {got}, the guests\' '
                                       f'figures add up to {expected}')
            projects = self.by('project:libvirt_domain_memory_used_bytes'
                               ':sum', 'project_name')
            for project, key in (('one', 'p1'), ('two', 'p2')):
                expected = sum(v for (_, n), v in used.items()
                               if n == names[key])
                got = projects.get((project,))
                if got is None or abs(expected - got) > 24 * MIB:
                    differences.append(f'project {project}: used {got}, the '
                                       f'guests\' figures add up to '
                                       f'{expected}')
            available = self.by('project:libvirt_domain_memory_stats_'
                                'available_bytes:sum', 'project_name')
            own = self.by('libvirt_domain_memory_stats_available_bytes',
                          'instance', 'domain')
            expected = sum(v for (_, n), v in own.items()
                           if n == names['p1'])
            if available.get(('one',)) != expected:
                differences.append(f'project one: available '
                                   f'{available.get(("one",))}, the '
                                   f'guests\' figures add up to {expected}')
            return not differences
        try:
            self.wait_for('the recorded sums to match the guests\' figures',
                          sums_agree, 60)
        except self.failureException as e:
            self.fail(f'{e}: {"; ".join(differences)}')

        # Every panel of the fleet dashboard returns data here.
        with open(os.path.join(ADMIN, 'exporter-fleet-dashboard.json')) as f:
            dashboard = json.load(f)
        self.wait_for('two samples of rates', lambda: self.query(
            'domain:libvirt_domain_memory_stats_major_fault:rate5m'), 60)
        for panel in dashboard['panels']:
            for target in panel['targets']:
                # each asked until it has data: rules and scrapes land at
                # their own times on a loaded host
                expr = target['expr']
                self.wait_for(f'{panel["title"]}: {expr} to give data',
                              functools.partial(self.query, expr), 60)
