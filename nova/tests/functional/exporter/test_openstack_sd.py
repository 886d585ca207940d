"""The fleet recipe, run for real: Prometheus' own openstack_sd.

``exporter-fleet-scrape.yml`` is filled in as the exporter guide says for
each of 4 shards (with client certificates), and run by 4 real Prometheus
servers. They discover hypervisors through Prometheus' ``openstack_sd``
(role hypervisor) from a Keystone v3 and Nova stand-in of the test's
(``POST /v3/auth/tokens``, ``GET .../os-hypervisors/detail``: all that
openstack_sd asks) listing six QEMU hypervisors that are up, one that is
down, an ironic and a VMware one; the six have an exporter each, on
addresses of their own (127.0.0.11 to .16, as Nova's ``host_ip``), over
TLS with client certificates and basic auth. Every QEMU hypervisor that is
up must be kept by exactly one shard, named by its host name and scraped
(up), the others dropped, and the exporter whose certificate names only a
DNS name must be down with the error the guide quotes. What the template
says of the file system and network is the only thing changed: the TLS
files' directory, Keystone's address, the exporters' port, and a shorter
scrape interval.
"""

import http.server
import json
import os
import socket
import threading

import fixtures

from nova import test
from nova.tests import prometheus
from nova.tests.fixtures import exporter as fakeexporter
from nova.tests.fixtures import prometheus_server

SHARDS = 4
# hostname: (host_ip, type, state): Nova's view of the cloud
HYPERVISORS = {
    'compute1': ('127.0.0.11', 'QEMU', 'up'),
    'compute2': ('127.0.0.12', 'QEMU', 'up'),
    'compute3': ('127.0.0.13', 'QEMU', 'up'),
    'compute4': ('127.0.0.14', 'QEMU', 'up'),
    'compute5': ('127.0.0.15', 'QEMU', 'up'),
    'dnsonly': ('127.0.0.16', 'QEMU', 'up'),
    'broken': ('127.0.0.17', 'QEMU', 'down'),
    'baremetal': ('127.0.0.18', 'ironic', 'up'),
    'vcenter': ('127.0.0.19', 'VMware vCenter Server', 'up'),
}
KEPT = {name for name, (_, kind, state) in HYPERVISORS.items()
        if kind == 'QEMU' and state == 'up'}
PASSWORD = 'fleet-secret'
# what the template says
CREDENTIAL = ('0123456789abcdef0123456789abcdef', 'REPLACE-WITH-THE-SECRET')


def _hypervisor(number: int, name: str) -> dict:
    host_ip, kind, state = HYPERVISORS[name]
    return {
        'id': number, 'hypervisor_hostname': name, 'host_ip': host_ip,
        'hypervisor_type': kind, 'hypervisor_version': 7002000,
        'state': state, 'status': 'enabled',
        'cpu_info': json.dumps({'arch': 'x86_64', 'model': 'qemu64',
                                'vendor': 'AMD', 'features': [],
                                'topology': {'cores': 2, 'threads': 1,
                                             'sockets': 1}}),
        'free_disk_gb': 90, 'local_gb': 100, 'local_gb_used': 10,
        'disk_available_least': 90, 'vcpus': 2, 'vcpus_used': 0,
        'memory_mb': 4096, 'memory_mb_used': 512, 'free_ram_mb': 3584,
        'current_workload': 0, 'running_vms': 0,
        'service': {'host': name, 'id': 100 + number,
                    'disabled_reason': None}}


class _OpenStack(http.server.BaseHTTPRequestHandler):
    """Keystone v3's token call and Nova's hypervisor list, nothing more;
    every request is recorded (``server.asked``).
    """

    def log_message(self, *args):
        pass

    def _json(self, status: int, body: dict, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length'] or 0))
        self.server.asked.append(('POST', self.path, json.loads(body)))
        if self.path != '/v3/auth/tokens':
            return self._json(404, {})
        compute = f'http://127.0.0.1:{self.server.server_port}/compute/v2.1'
        self._json(201, {'token': {
            'methods': ['application_credential'],
            'expires_at': '2099-01-01T00:00:00.000000Z',
            'issued_at': '2026-01-01T00:00:00.000000Z',
            'user': {'id': 'u1', 'name': 'metrics',
                     'domain': {'id': 'default', 'name': 'Default'}},
            'project': {'id': 'p1', 'name': 'admin',
                        'domain': {'id': 'default', 'name': 'Default'}},
            'roles': [{'id': 'r1', 'name': 'admin'}],
            'catalog': [{'type': 'compute', 'name': 'nova', 'id': 'c1',
                         'endpoints': [{'id': 'e1', 'interface': 'public',
                                        'region': 'RegionOne',
                                        'region_id': 'RegionOne',
                                        'url': compute}]}]}},
            headers=[('X-Subject-Token', 'test-token')])

    def do_GET(self):
        self.server.asked.append(('GET', self.path,
                                  self.headers.get('X-Auth-Token')))
        if self.path.rstrip('/') != '/compute/v2.1/os-hypervisors/detail':
            return self._json(404, {})
        self._json(200, {'hypervisors': [
            _hypervisor(n, name) for n, name in enumerate(HYPERVISORS, 1)]})


def _free_port_on(addresses) -> int:
    """A port free on every one of ``addresses``."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((addresses[0], 0))
            port = s.getsockname()[1]
        try:
            for address in addresses[1:]:
                with socket.socket() as s:
                    s.bind((address, port))
            return port
        except OSError:
            continue
    raise AssertionError('no port free on every address')


class OpenStackDiscoveryTest(test.TestCase):

    def setUp(self):
        super().setUp()
        reason = prometheus.missing()
        if reason:
            self.fail(reason)
        self.useFixture(fixtures.Timeout(300, gentle=True))
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def _openstack(self) -> str:
        server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                 _OpenStack)
        server.asked = []
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(thread.join, 10)
        self.addCleanup(server.shutdown)
        self.addCleanup(server.server_close)
        self.openstack = server
        return f'http://127.0.0.1:{server.server_port}/v3'

    def _exporters(self, tls_dir: str) -> int:
        # the files the template names, in a directory of the test's
        ca = fakeexporter.make_cert(tls_dir, 'nova-libvirt-ca')
        fakeexporter.make_cert(tls_dir, 'prometheus', ca=ca)
        with open(os.path.join(tls_dir, 'nova-libvirt.password'), 'w') as f:
            f.write(PASSWORD)
        addresses = [HYPERVISORS[name][0] for name in sorted(KEPT)]
        port = _free_port_on(addresses)
        users = (f'basic_auth_users:\n  prometheus: '
                 f'{fakeexporter.bcrypt_hash(PASSWORD)}\n')
        for name in sorted(KEPT):
            address = HYPERVISORS[name][0]
            home = os.path.join(self.tmp, name)
            os.mkdir(home)
            # the host's address as an IP SAN, as the guide says; one
            # host's certificate has its DNS name only
            san = (f'DNS:{name}.example.org' if name == 'dnsonly' else
                   f'IP:{address},DNS:{name}.example.org')
            cert = fakeexporter.make_cert(home, name, ca=ca, san=san)
            web = (f'tls_server_config:\n  cert_file: {cert[0]}\n'
                   f'  key_file: {cert[1]}\n'
                   f'  client_ca_file: {ca[0]}\n'
                   '  client_auth_type: RequireAndVerifyClientCert\n'
                   + users)
            exporter = self.useFixture(fakeexporter.ExporterProcess(
                home, web, address=address, port=port))
            self.assertIsNone(exporter.proc.poll(), exporter.log())
        return port

    def _shard_config(self, shard: int, tls_dir: str, keystone: str,
                      port: int) -> str:
        out = os.path.join(self.tmp, f'shard-{shard}.yml')
        prometheus.render_fleet_config(shard, SHARDS, True, out)
        with open(out) as f:
            text = f.read()
        for printed, ours in (
                ('/etc/prometheus/', tls_dir + '/'),
                ('https://keystone.example.org:5000/v3', keystone),
                ('port: 9179', f'port: {port}'),
                ('scrape_interval: 30s', 'scrape_interval: 3s'),
                ('scrape_timeout: 10s', 'scrape_timeout: 3s')):
            self.assertIn(printed, text)
            text = text.replace(printed, ours)
        return text

    def test_every_qemu_host_up_is_scraped_by_one_shard(self):
        tls_dir = os.path.join(self.tmp, 'tls')
        os.mkdir(tls_dir)
        keystone = self._openstack()
        port = self._exporters(tls_dir)
        rules = [os.path.join(prometheus.ADMIN, name) for name in
                 ('exporter-fleet-rules.yml', 'exporter-alerts.yml')]
        servers = [self.useFixture(prometheus_server.Prometheus(
            config=self._shard_config(k, tls_dir, keystone, port),
            files=rules)) for k in range(SHARDS)]

        def targets(server) -> list:
            body = json.loads(prometheus_server.get(
                server.api + '/api/v1/targets?state=active'))
            return body['data']['activeTargets']

        def all_scraped():
            found = [t for server in servers for t in targets(server)]
            return (len(found) == len(KEPT) and
                    all(t['health'] != 'unknown' for t in found)) and found
        found = self.wait_for('every kept target scraped once', all_scraped,
                              90, 0.5)
        by_shard = {k: {t['labels']['instance'] for t in targets(server)}
                    for k, server in enumerate(servers)}
        # each QEMU host that is up, in exactly one shard, by its name
        kept = [name for names in by_shard.values() for name in names]
        self.assertEqual(sorted(KEPT), sorted(kept))
        for target in found:
            name = target['labels']['instance']
            self.assertEqual(
                f'https://{HYPERVISORS[name][0]}:{port}/metrics',
                target['scrapeUrl'])
            if name == 'dnsonly':
                self.assertEqual('down', target['health'])
                self.assertIn(f'cannot validate certificate for '
                              f'{HYPERVISORS[name][0]} because it doesn\'t '
                              'contain any IP SANs', target['lastError'])
            else:
                self.assertEqual('up', target['health'],
                                 target['lastError'])
        # each shard's own external label
        for k, server in enumerate(servers):
            body = json.loads(prometheus_server.get(
                server.api + '/api/v1/status/config'))
            self.assertIn(f'prometheus_shard: "{k}"', body['data']['yaml'])
        # and its figures arrived: libvirt_up of each host scraped
        for k, server in enumerate(servers):
            got = {r['metric']['instance'] for r in json.loads(
                prometheus_server.get(server.api + '/api/v1/query?query='
                                      'libvirt_up'))['data']['result']}
            self.assertEqual(by_shard[k] - {'dnsonly'}, got)
        # openstack_sd asked Keystone for a token with the credential,
        # then Nova for the hypervisors with it, and nothing else
        asked = {(method, path.rstrip('/')) for method, path, _ in
                 self.openstack.asked}
        self.assertEqual({('POST', '/v3/auth/tokens'),
                          ('GET', '/compute/v2.1/os-hypervisors/detail')},
                         asked)
        auth = next(body for method, _, body in self.openstack.asked
                    if method == 'POST')
        credential = auth['auth']['identity']['application_credential']
        self.assertEqual(CREDENTIAL, (credential['id'],
                                      credential['secret']))
        self.assertTrue(all(token == 'test-token' for method, _, token in
                            self.openstack.asked if method == 'GET'))
