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

    def _install(self, tmp, user, *extra):
        result = subprocess.run(
            [os.path.join(TOP, 'tools', 'install-service'),
             '--prefix', f'{tmp}/opt', '--unit-dir', f'{tmp}/units',
             '--config', f'{tmp}/etc/nova.conf', '--no-user', '--user',
             user, '--writer', 'nlv-test-no-such-writer', *extra],
            capture_output=True, text=True, timeout=600)
        self.assertEqual(0, result.returncode, result.stderr[-3000:])
        return result.stdout

    def test_dry_run_prints_every_step_and_does_none(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        out = self._install(tmp, 'nlv-test-no-such-user', '--dry-run')
        self.assertEqual([], os.listdir(tmp))
        for step in (f'would run: /usr/bin/python3 -m venv {tmp}/opt',
                     f'would write the configuration {tmp}/etc/nova.conf',
                     'would run: install -m 644',
                     f'{tmp}/units/nova-libvirt-reconcile.timer'):
            self.assertIn(step, out)
        self.assertTrue(all('(dry run)' in line
                            for line in out.splitlines()), out)
        # without systemd it says how to run it, and claims nothing
        self.assertIn('systemd does not run here, so nothing was started',
                      out)
        self.assertIn('runuser -u nlv-test-no-such-user -- '
                      f'{tmp}/opt/bin/nova-libvirt-exporter', out)

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
        self.assertIn('user nlv-test-no-such-writer does not exist', out)
        units = f'{tmp}/units'
        names = sorted(os.listdir(units))
        self.assertEqual(['nova-libvirt-exporter.service',
                          'nova-libvirt-exporter.socket',
                          'nova-libvirt-reconcile.path',
                          'nova-libvirt-reconcile.service',
                          'nova-libvirt-reconcile.timer'], names)
        texts = {}
        for name in names:
            self.assertIn(f'unit installed: {units}/{name}', out)
            with open(f'{units}/{name}') as f:
                texts[name] = f.read()
            for placeholder in ('@PREFIX@', '@CONFIG@', '@DOCDIR@',
                                '@USER@', '@WRITER@', '@LISTEN@'):
                self.assertNotIn(placeholder, texts[name], name)
            doc = [line for line in texts[name].splitlines()
                   if line.startswith('Documentation=file://')][0]
            self.assertTrue(os.path.exists(doc.split('file://', 1)[1]))
        for name, program, user in (
                ('nova-libvirt-exporter.service', 'nova-libvirt-exporter',
                 'nlv-test-no-such-user'),
                ('nova-libvirt-reconcile.service', 'nova-libvirt',
                 'nlv-test-no-such-writer')):
            exec_start = [line for line in texts[name].splitlines()
                          if line.startswith('ExecStart=')][0]
            argv = exec_start.split('=', 1)[1].split()
            self.assertEqual(f'{tmp}/opt/bin/{program}', argv[0])
            self.assertTrue(os.access(argv[0], os.X_OK))
            self.assertIn(f'--config-file {tmp}/etc/nova.conf', exec_start)
            self.assertIn(f'\nUser={user}\n', texts[name])
            # no network of their own, no other socket family
            self.assertIn('\nPrivateNetwork=yes\n', texts[name])
            self.assertIn('\nRestrictAddressFamilies=AF_UNIX\n',
                          texts[name])
        # the exporter gets no group (none of libvirt's)
        self.assertNotIn('Group=', texts['nova-libvirt-exporter.service'])
        self.assertIn('\nListenStream=127.0.0.1:9179\n',
                      texts['nova-libvirt-exporter.socket'])

        # systemd's own checks of the units as installed
        verify = subprocess.run(
            ['systemd-analyze', 'verify',
             *(f'{units}/{name}' for name in names)],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(0, verify.returncode, verify.stderr)
        for name in ('nova-libvirt-exporter.service',
                     'nova-libvirt-reconcile.service'):
            security = subprocess.run(
                ['systemd-analyze', 'security', '--offline=true',
                 '--threshold=20', f'{units}/{name}'],
                capture_output=True, text=True, timeout=60)
            self.assertEqual(0, security.returncode,
                             name + security.stdout[-2000:])

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

        # again, for root: the same units but for User=; an exporter user
        # in group libvirt (full control) is told it should not be
        again = self._install(tmp, 'root')
        self.assertIn('exists: left as it is', again)
        self.assertRegex(again, r'installed version \S+ \(was \S+\)')
        in_group = 'root' in grp.getgrnam('libvirt').gr_mem
        self.assertEqual(in_group, 'gpasswd -d root libvirt' in again,
                         again)

        # removal: what it made goes (the configuration it wrote,
        # unchanged, too); what it did not make is kept, and said
        with open(f'{tmp}/etc/other.conf', 'w') as f:
            f.write('# the operator\'s\n')
        removed = subprocess.run(
            [os.path.join(TOP, 'tools', 'install-service'), '--uninstall',
             '--prefix', f'{tmp}/opt', '--unit-dir', units,
             '--config', f'{tmp}/etc/other.conf', '--no-user'],
            capture_output=True, text=True, timeout=120)
        self.assertEqual(0, removed.returncode, removed.stderr)
        self.assertFalse(os.path.exists(f'{tmp}/opt'))
        self.assertEqual([], os.listdir(units))
        self.assertFalse(os.path.exists(f'{tmp}/etc/nova.conf'))
        self.assertIn(f'removed the configuration {tmp}/etc/nova.conf '
                      '(unchanged since it was written)', removed.stdout)
        self.assertIn(f'kept the configuration {tmp}/etc/other.conf (not '
                      'written by this installer)', removed.stdout)
        self.assertTrue(os.path.exists(f'{tmp}/etc/other.conf'))
        # nothing recorded: nothing removed
        again = subprocess.run(
            [os.path.join(TOP, 'tools', 'install-service'), '--uninstall',
             '--prefix', f'{tmp}/opt', '--unit-dir', units],
            capture_output=True, text=True, timeout=120)
        self.assertEqual(0, again.returncode, again.stderr)
        self.assertIn('nothing removed', again.stdout)
