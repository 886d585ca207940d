"""tools/install-service: from this repository to an installed, verified
service, into temporary places (never /opt or /etc), with Debian's own
python3 and its pip. Under a booted systemd: nova/tests/functional/systemd.
"""

import grp
import os
import subprocess

import fixtures

from nova import test

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


class InstallServiceTest(test.TestCase):

    def _install(self, tmp, user):
        result = subprocess.run(
            [os.path.join(TOP, 'tools', 'install-service'),
             '--prefix', f'{tmp}/opt', '--unit-dir', f'{tmp}/units',
             '--config', f'{tmp}/etc/nova.conf', '--no-user', '--user',
             user],
            capture_output=True, text=True, timeout=600)
        self.assertEqual(0, result.returncode, result.stderr[-3000:])
        return result.stdout

    def test_install_verify_and_again(self):
        self.useFixture(fixtures.Timeout(900, gentle=True))
        tmp = self.useFixture(fixtures.TempDir()).path
        out = self._install(tmp, 'nlv-test-no-such-user')
        self.assertIn('configuration written', out)
        # the operator's interpreter, and its pip, build and install it
        self.assertIn(f'creating the virtualenv {tmp}/opt with '
                      '/usr/bin/python3', out)
        with open(f'{tmp}/opt/pyvenv.cfg') as f:
            self.assertIn('home = /usr/bin', f.read())
        self.assertRegex(out, r'building a wheel of .* with pip \d')
        # --no-user changes no account, and says what is missing
        self.assertIn('user nlv-test-no-such-user does not exist', out)
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
        for placeholder in ('@PREFIX@', '@CONFIG@', '@DOCDIR@', '@USER@'):
            self.assertNotIn(placeholder, text)
        self.assertIn('\nUser=nlv-test-no-such-user\n', text)
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

        # again, for root: the same unit but for User=; an account outside
        # group libvirt in /etc/group gets the command that fixes it
        again = self._install(tmp, 'root')
        self.assertIn('exists: left as it is', again)
        self.assertRegex(again, r'installed version \S+ \(was \S+\)')
        in_group = 'root' in grp.getgrnam('libvirt').gr_mem
        self.assertEqual(not in_group, 'usermod -a -G libvirt root' in again,
                         again)

        # removal: the virtualenv and the unit go, the configuration stays
        removed = subprocess.run(
            [os.path.join(TOP, 'tools', 'install-service'), '--uninstall',
             '--prefix', f'{tmp}/opt', '--unit-dir', f'{tmp}/units',
             '--config', f'{tmp}/etc/nova.conf', '--no-user'],
            capture_output=True, text=True, timeout=120)
        self.assertEqual(0, removed.returncode, removed.stderr)
        self.assertFalse(os.path.exists(f'{tmp}/opt'))
        self.assertFalse(os.path.exists(unit))
        self.assertTrue(os.path.exists(f'{tmp}/etc/nova.conf'))
        self.assertIn('kept the configuration', removed.stdout)
