"""The exporter service on libvirt's test driver: HTTP, TLS, reload,
signals, and a console-script run.
"""

import os
import signal
import socket
import ssl
import subprocess
import sys

import fixtures

from nova import exception
from nova.cmd import exporter as exporter_cmd
import nova.conf
from nova.exporter import service
from nova.tests import doc_table
from nova.tests import prometheus
from nova.tests.functional.exporter import base
from nova.virt.libvirt import driver as libvirt_driver
from nova.virt.libvirt import host as libvirt_host

CONF = nova.conf.CONF




class ServiceTest(base.ServiceTestCase):

    def test_scrape(self):
        svc = self.start()
        text = self.scrape(svc)
        self.assertIn('libvirt_up 1.0', text)
        self.assertIn('libvirt_domain_memory_stats_state{domain="test",'
                      'libvirt_domain_memory_stats_state="no-stats-period"}'
                      ' 1.0', text)
        self.assertIn('libvirt_memory_stats_scrape_duration_seconds', text)
        reason = prometheus.missing()
        if reason:
            self.fail(reason)
        rc, out = prometheus.promtool('check', 'metrics', stdin=text)
        self.assertEqual(0, rc, out)

    def test_listens_on_localhost_by_default(self):
        self.assertEqual('127.0.0.1', CONF.exporter.listen_address)
        self.assertNotEqual(9177, CONF.exporter.listen_port)

    def test_libvirt_down_is_libvirt_up_0(self):
        svc = self.start()
        self.useFixture(fixtures.MockPatchObject(
            libvirt_host.Host, 'get_memory_stats',
            side_effect=exception.HypervisorUnavailable(uri='x',
                                                        reason='gone')))
        text = self.scrape(svc)
        self.assertIn('libvirt_up 0.0', text)
        self.assertNotIn('domain="test"', text)

    def test_libvirt_down_is_logged_once_and_its_return_once(self):
        svc = self.start()
        logs = self.useFixture(fixtures.FakeLogger())
        errors = [exception.HypervisorNotAnswering(
            uri='x', reason=f'oldest call {age}s') for age in (5, 10, 15)]
        with fixtures.MockPatchObject(libvirt_host.Host, 'get_memory_stats',
                                      side_effect=errors):
            for _ in errors:  # each message different (an age)
                self.assertIn('libvirt_up 0.0', self.scrape(svc))
        self.assertIn('libvirt_up 1.0', self.scrape(svc))
        self.assertIn('libvirt_up 1.0', self.scrape(svc))
        self.assertEqual(1, logs.output.count('no guest figures'))
        self.assertEqual(1, logs.output.count('libvirt answers again.\n'))

    def test_port_in_use_is_one_line(self):
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        self.load(f'listen_port = {port}\n')
        svc = exporter_cmd.build(CONF)
        e = self.assertRaises(service.ExporterFailed, svc.start)
        self.assertIn(f'127.0.0.1:{port} is in use by another process',
                      str(e))
        self.assertEqual(1, len(str(e).splitlines()))

    def test_tls_needs_both_files(self):
        self.load(f'tls_cert_file = {self.conf_path}\n')
        svc = exporter_cmd.build(CONF)
        e = self.assertRaises(service.ExporterFailed, svc.start)
        self.assertIn('set both [exporter] tls_cert_file and tls_key_file',
                      str(e))

    def test_tls(self):
        cert = os.path.join(self.tmp, 'cert.pem')
        key = os.path.join(self.tmp, 'key.pem')
        subprocess.run(
            ['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
             '-keyout', key, '-out', cert, '-days', '1', '-subj',
             '/CN=127.0.0.1'], check=True, capture_output=True, timeout=60)
        svc = self.start(f'tls_cert_file = {cert}\ntls_key_file = {key}\n')
        context = ssl.create_default_context(cafile=cert)
        context.check_hostname = False
        self.assertIn('libvirt_up 1.0',
                      self.scrape(svc, 'https', context))
        self.assertRaises(OSError, self.scrape, svc)  # no plain HTTP

    def test_reload_applies_mutable_options(self):
        svc = self.start()
        logs = self.useFixture(fixtures.FakeLogger())
        with open(self.conf_path, 'a') as f:
            f.write('[libvirt]\nmem_stats_poll_timeout = 9\n')
        svc.reload()
        self.assertEqual(9, svc.collector.timeout)
        self.assertIn('Configuration changed: [libvirt] '
                      'mem_stats_poll_timeout = 9 (was 5)', logs.output)

    def test_reload_refuses_a_bad_value_and_keeps_serving(self):
        svc = self.start()
        logs = self.useFixture(fixtures.FakeLogger())
        with open(self.conf_path, 'a') as f:
            f.write('[libvirt]\nmem_stats_poll_timeout = abc\n')
        svc.reload()
        self.assertIn('[libvirt] mem_stats_poll_timeout = abc', logs.output)
        doc_table.check(self, 'exporter-bad-reload', 0, logs.output)
        self.assertEqual(5, CONF.libvirt.mem_stats_poll_timeout)
        self.assertIn('libvirt_up 1.0', self.scrape(svc))

    def _node(self, *balloons):
        """A private copy of the test driver's host: changes must not
        leak into test:///default, which other tests read.
        """
        node = os.path.join(self.tmp, 'node.xml')
        with open(node, 'w') as f:
            f.write('<node>' + ''.join(
                f"<domain type='test'><name>g{i}</name><memory>262144"
                "</memory><os><type>hvm</type></os><devices>"
                f"{balloon}</devices></domain>"
                for i, balloon in enumerate(balloons)) + '</node>')
        return node

    def test_apply_stats_period_is_said_and_changes_nothing(self):
        node = self._node("<memballoon model='virtio'/>")
        logs = self.useFixture(fixtures.FakeLogger())
        svc = self.start('apply_stats_period = true\n[libvirt]\n'
                         'mem_stats_period_seconds = 7\n'
                         f'connection_uri = test://{node}\n')
        self.assertIn('libvirt_up 1.0', self.scrape(svc))
        said = [line for line in logs.output.splitlines()
                if 'apply_stats_period' in line]
        self.assertEqual(1, len(said), logs.output)
        self.assertIn('the exporter only reads now: '
                      'nova-libvirt-reconcile.path and .timer', said[0])
        self.assertNotIn("period='7'",
                         self.driver.host.get_guest('g0').get_xml_desc())

    def test_the_connection_is_read_only_whatever_the_configuration(self):
        node = self._node("<memballoon model='virtio'/>")
        svc = self.start('apply_stats_period = true\n[libvirt]\n'
                         f'connection_uri = test://{node}\n')
        self.assertIn('libvirt_up 1.0', self.scrape(svc))
        host = self.driver.host
        self.assertTrue(host.read_only)
        e = self.assertRaises(
            exception.LibvirtCallFailed,
            host.get_guest('g0').set_memory_stats_period, 7, live=False,
            config=True)
        self.assertIn('read only access prevents', str(e))
        self.assertRaises(ValueError, exporter_cmd.build, CONF,
                          libvirt_driver.LibvirtDriver())

    def test_wanted_period_follows_the_option_and_shows_drift(self):
        node = self._node("<memballoon model='virtio'><stats period='10'/>"
                          "</memballoon>")
        svc = self.start(f'[libvirt]\nconnection_uri = test://{node}\n'
                         'mem_stats_period_seconds = 10\n')
        has = 'libvirt_domain_memory_stats_period_seconds{domain="g0"} '
        wants = ('libvirt_domain_memory_stats_wanted_period_seconds'
                 '{domain="g0"} ')
        text = self.scrape(svc)
        self.assertIn(has + '10.0', text)
        self.assertIn(wants + '10.0', text)
        with open(self.conf_path, 'a') as f:
            f.write('[libvirt]\nmem_stats_period_seconds = 5\n')
        svc.reload()
        # the exporter changed nothing: the writer's job is visible as drift
        text = self.scrape(svc)
        self.assertIn(has + '10.0', text)
        self.assertIn(wants + '5.0', text)


class ConsoleScriptTest(base.ServiceTestCase):
    """The real process: SIGHUP reloads, SIGTERM stops, errors are one
    line.
    """

    def test_sighup_and_sigterm(self):
        with open(self.conf_path, 'w') as f:
            f.write('[libvirt]\nconnection_uri = test:///default\n'
                    '[exporter]\nlisten_port = 0\n')
        proc = self._run('--config-file', self.conf_path)
        self._wait_for(proc, 'Serving http://127.0.0.1:')
        with open(self.conf_path, 'a') as f:
            f.write('[libvirt]\nmem_stats_period_seconds = 3\n')
        proc.send_signal(signal.SIGHUP)
        out = self._wait_for(proc, 'Configuration changed: [libvirt] '
                                   'mem_stats_period_seconds = 3 (was 10)')
        # an option that needs a restart: said with its values, never
        # "nothing changed" (oslo.config's "Ignoring change" line alone
        # once came with it)
        with open(self.conf_path, 'a') as f:
            f.write('[exporter]\nclient_timeout = 20\n')
        proc.send_signal(signal.SIGHUP)
        said = self._wait_for(proc, 'it applies at the next restart.')
        self.assertIn('Configuration changed in the files: [exporter] '
                      'client_timeout = 20 (running with 10)', said)
        proc.send_signal(signal.SIGTERM)
        said += self._wait_for(proc, 'Stopped.')
        self.assertNotIn('nothing changed', said)
        self.assertNotIn('Ignoring change', said)
        out += said
        # once, with the value in effect: not oslo.config's own line too,
        # which names the value in the files ("from [None]")
        self.assertNotIn('Option libvirt.mem_stats_period_seconds', out)
        self.assertEqual(0, proc.wait(timeout=30))

    def test_exposed_without_tls_or_passwords_says_so_once(self):
        with open(self.conf_path, 'w') as f:
            f.write('[libvirt]\nconnection_uri = test:///default\n'
                    '[exporter]\nlisten_address = 0.0.0.0\n'
                    'listen_port = 0\n')
        proc = self._run('--config-file', self.conf_path)
        out = self._wait_for(proc, 'Serving http://0.0.0.0:')
        out += self._wait_for(proc, 'without TLS or basic_auth_users')
        proc.send_signal(signal.SIGTERM)
        out += self._wait_for(proc, 'Stopped.')
        warnings = [line for line in out.splitlines() if 'WARNING' in line]
        self.assertEqual(1, len(warnings), out)
        self.assertRegex(warnings[0], r'Listening on 0\.0\.0\.0:\d+ '
                                      r'without TLS or basic_auth_users')
        self.assertEqual(0, proc.wait(timeout=30))
        # on loopback, nothing
        with open(self.conf_path, 'w') as f:
            f.write('[libvirt]\nconnection_uri = test:///default\n'
                    '[exporter]\nlisten_port = 0\n')
        proc = self._run('--config-file', self.conf_path)
        self._wait_for(proc, 'Serving http://127.0.0.1:')
        proc.send_signal(signal.SIGTERM)
        self.assertNotIn('WARNING', self._wait_for(proc, 'Stopped.'))
        self.assertEqual(0, proc.wait(timeout=30))

    def test_help_opens_with_what_it_serves(self):
        proc = self._run('--help')
        self.assertEqual(0, proc.wait(timeout=30))
        out = self._wait_for(proc, 'Documentation')
        first = out.splitlines()[:8]
        self.assertTrue(any('/metrics' in line for line in first), first)
        self.assertIn('doc/source/admin/exporter.rst', out)

    def test_bad_configuration_is_one_line(self):
        with open(self.conf_path, 'w') as f:
            f.write('[exporter]\nlisten_port = 70000\n')
        proc = self._run('--config-file', self.conf_path)
        self.assertEqual(2, proc.wait(timeout=30))
        out = self._wait_for(proc, 'listen_port')
        self.assertEqual(1, len(out.splitlines()), out)
        self.assertIn('[exporter] listen_port = 70000', out)


class BadInputProcessTest(base.ServiceTestCase):
    """The cases of doc/source/admin/bad-input.rst that run the exporter's
    console script as a process.
    """

    def _file(self, body):
        path = os.path.join(self.tmp, 'bad.conf')
        with open(path, 'w') as f:
            f.write(body)
        return path

    def test_exporter_log_file(self):
        conf = self._file("[libvirt]\nconnection_uri = test:///default\n")
        result = subprocess.run(
            [sys.executable, '-m', 'nova.cmd.exporter', '--config-file',
             conf, '--log-file', os.path.join(self.tmp, 'no', 'x.log')],
            capture_output=True, text=True, timeout=60)
        self.assertNotEqual(0, result.returncode)
        self.assertEqual(1, len(result.stderr.splitlines()), result.stderr)
        self.assertTrue(result.stderr.startswith(
            'nova-libvirt-exporter: error: '), result.stderr)
        doc_table.check(self, 'exporter-log-file', result.returncode,
                        result.stderr)

    def test_exporter_bad_flag(self):
        def run(*args):
            return subprocess.run(
                [sys.executable, '-m', 'nova.cmd.exporter', *args],
                capture_output=True, text=True, timeout=60)
        result = run('--listen-port', 'abc')
        self.assertEqual(1, len(result.stderr.splitlines()), result.stderr)
        doc_table.check(self, 'exporter-bad-flag', result.returncode,
                        result.stderr)
        for args, said in (
                (('--listen-port', '-1'), '--listen-port -1 is not valid'),
                (('--listen-port', '70000'), '--listen-port 70000 is not'),
                (('--listen-address', '999.1.1.1'),
                 '--listen-address 999.1.1.1 is not valid: expected an '
                 'IPv4 or IPv6 address')):
            result = run(*args)
            self.assertEqual(2, result.returncode, result.stderr)
            self.assertEqual(f'nova-libvirt-exporter: error: {said}',
                             result.stderr[:30 + len(said)], result.stderr)
        # the same value in nova.conf: the same exit status
        conf = self._file('[exporter]\nlisten_port = abc\n')
        self.assertEqual(2, run('--config-file', conf).returncode)

    def test_exporter_port_in_use(self):
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        conf = self._file('[libvirt]\nconnection_uri = test:///default\n'
                          f'[exporter]\nlisten_port = '
                          f'{taken.getsockname()[1]}\n')
        result = subprocess.run(
            [sys.executable, '-m', 'nova.cmd.exporter', '--config-file',
             conf], capture_output=True, text=True, timeout=60)
        err = result.stderr.splitlines()[-1] + '\n'
        doc_table.check(self, 'exporter-port-in-use', result.returncode,
                        err)
        self.assertTrue(err.startswith('nova-libvirt-exporter: error: '))
