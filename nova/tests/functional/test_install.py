"""tools/install-service: from this repository to an installed, verified
service, into temporary places (never /opt or /etc)."""

import os
import subprocess

import fixtures

from nova import test

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


class InstallServiceTest(test.TestCase):

    def _install(self, tmp):
        result = subprocess.run(
            [os.path.join(TOP, 'tools', 'install-service'),
             '--prefix', f'{tmp}/opt', '--unit-dir', f'{tmp}/units',
             '--config', f'{tmp}/etc/nova.conf', '--no-user'],
            capture_output=True, text=True, timeout=600)
        self.assertEqual(0, result.returncode, result.stderr[-3000:])
        return result.stdout

    def test_install_verify_and_again(self):
        self.useFixture(fixtures.Timeout(900, gentle=True))
        tmp = self.useFixture(fixtures.TempDir()).path
        out = self._install(tmp)
        self.assertIn('configuration written', out)
        self.assertIn('unit installed', out)
        unit = f'{tmp}/units/nova-libvirt-exporter.service'
        with open(unit) as f:
            text = f.read()
        exec_start = [line for line in text.splitlines()
                      if line.startswith('ExecStart=')][0]
        program = exec_start.split('=', 1)[1].split()[0]
        self.assertEqual(f'{tmp}/opt/bin/nova-libvirt-exporter', program)
        self.assertTrue(os.access(program, os.X_OK))
        self.assertIn(f'--config-file {tmp}/etc/nova.conf', exec_start)
        for placeholder in ('@PREFIX@', '@CONFIG@', '@DOCDIR@'):
            self.assertNotIn(placeholder, text)
        doc = [line for line in text.splitlines()
               if line.startswith('Documentation=file://')][0]
        self.assertTrue(os.path.exists(doc.split('file://', 1)[1]))

        # systemd's own checks of the unit as installed
        verify = subprocess.run(['systemd-analyze', 'verify', unit],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(0, verify.returncode, verify.stderr)
        security = subprocess.run(
            ['systemd-analyze', 'security', '--offline=true',
             '--threshold=20', unit],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(0, security.returncode, security.stdout[-2000:])

        # the console scripts of the new virtualenv run
        for script in ('nova-libvirt', 'nova-libvirt-exporter'):
            result = subprocess.run([f'{tmp}/opt/bin/{script}', '--help'],
                                    capture_output=True, text=True,
                                    timeout=60)
            self.assertEqual(0, result.returncode, result.stderr)
        result = subprocess.run(
            [f'{tmp}/opt/bin/nova-libvirt', '--config-file',
             f'{tmp}/etc/nova.conf', 'guest-xml', '--name', 'g',
             '--kernel', '/bin/true'],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertIn('<memballoon model="virtio"', result.stdout)

        # idempotent: nothing to do the second time, and it says so
        again = self._install(tmp)
        self.assertIn('exists: left as it is', again)
        self.assertIn('is up to date', again)
