"""Tests for the nova-libvirt command line."""

import io
import json
import os

import fixtures

from nova.cmd import libvirt as cmd
from nova import test
from nova.virt.libvirt import config
from nova.virt.libvirt import host as libvirt_host


class CommandTestCase(test.TestCase):
    """Runs ``nova-libvirt`` in-process and captures what it prints."""

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.kernel = self._file('vmlinuz')
        self.initrd = self._file('initrd.gz')

    def _file(self, name, body='x'):
        path = os.path.join(self.tmp, name)
        with open(path, 'w') as f:
            f.write(body)
        return path

    def run_cmd(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', out))
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', err))
        rc = cmd.main(list(argv))
        return rc, out.getvalue(), err.getvalue()

    def assertOneLineError(self, rc, err, words, code=2):
        self.assertEqual(code, rc, err)
        self.assertEqual(1, len(err.splitlines()), err)
        self.assertTrue(err.startswith('nova-libvirt: error: '), err)
        self.assertIn(words, err)


class GuestXmlTest(CommandTestCase):

    def _conf(self, body):
        return ['--config-file', self._file('nova.conf', body)]

    def test_kernel_boot_with_configured_period(self):
        rc, out, err = self.run_cmd(
            *self._conf('[libvirt]\nvirt_type = qemu\n'
                        'mem_stats_period_seconds = 3\n'),
            'guest-xml', '--name', 'web1', '--memory-mb', '512', '--vcpus',
            '2', '--kernel', self.kernel, '--initrd', self.initrd,
            '--cmdline', 'console=ttyS0')
        self.assertEqual(0, rc, err)
        self.assertEqual('', err)
        self.assertValidDomain(out)
        guest = config.LibvirtConfigGuest().parse_str(out)
        self.assertEqual(('qemu', 'web1', 524288, 2),
                         (guest.virt_type, guest.name, guest.memory,
                          guest.vcpus))
        self.assertEqual((self.kernel, self.initrd, 'console=ttyS0'),
                         (guest.os_kernel, guest.os_initrd,
                          guest.os_cmdline))
        balloon = self.get_one_device(guest,
                                      config.LibvirtConfigMemoryBalloon)
        self.assertXmlEqual(
            '<memballoon model="virtio" autodeflate="on" '
            'freePageReporting="on"><stats period="3"/></memballoon>',
            balloon.to_xml())

    def test_disabled_period(self):
        rc, out, err = self.run_cmd(
            *self._conf('[libvirt]\nmem_stats_period_seconds = 0\n'),
            'guest-xml', '--disk', self.kernel)
        self.assertEqual(0, rc, err)
        guest = config.LibvirtConfigGuest().parse_str(out)
        self.assertEqual('kvm', guest.virt_type)
        self.assertXmlEqual('<memballoon model="none"/>', self.get_one_device(
            guest, config.LibvirtConfigMemoryBalloon).to_xml())

    def test_relative_paths_become_absolute(self):
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(self.tmp)
        rc, out, err = self.run_cmd('guest-xml', '--disk', 'vmlinuz')
        self.assertEqual(0, rc, err)
        self.assertIn(f'file="{self.kernel}"', out)

    def test_bad_config_value(self):
        rc, out, err = self.run_cmd(
            *self._conf('[libvirt]\nmem_stats_period_seconds = 2147483648\n'),
            'guest-xml', '--disk', self.kernel)
        self.assertOneLineError(rc, err, '[libvirt] mem_stats_period_seconds'
                                ' = 2147483648')
        self.assertIn('no greater than 2147483647', err)
        self.assertEqual('', out)

    def test_bad_arguments(self):
        cases = [
            (('--memory-mb', 'lots'), "--memory-mb: 'lots' is not an "
                                      'integer from 16 to 16777216'),
            (('--memory-mb', '8'), "'8' is not an integer from 16"),
            (('--vcpus', '0'), "--vcpus: '0' is not an integer"),
            (('--kernel', '/nonexistent/vmlinuz'),
             '--kernel /nonexistent/vmlinuz: no such file'),
            (('--initrd', 'INITRD'), 'needs a kernel'),
            (('--kernel', 'KERNEL', '--disk', 'KERNEL'), 'not both'),
            (('--name', 'a/b', '--disk', 'KERNEL'), "name 'a/b'"),
            ((), 'needs a kernel or a disk'),
            (('--bogus',), 'unrecognized arguments: --bogus'),
        ]
        for args, words in cases:
            args = [{'KERNEL': self.kernel, 'INITRD': self.initrd}.get(a, a)
                    for a in args]
            rc, out, err = self.run_cmd('guest-xml', *args)
            self.assertOneLineError(rc, err, words)
            self.assertEqual('', out)

    def test_missing_config_file(self):
        rc, out, err = self.run_cmd('--config-file', '/nonexistent.conf',
                                    'guest-xml', '--disk', self.kernel)
        self.assertOneLineError(rc, err, '/nonexistent.conf')

    def test_malformed_config_file(self):
        rc, out, err = self.run_cmd(*self._conf('garbage\n[libvirt\n'),
                                    'guest-xml', '--disk', self.kernel)
        self.assertOneLineError(rc, err, 'Failed to parse')

    def test_no_command(self):
        rc, out, err = self.run_cmd()
        self.assertOneLineError(rc, err, 'command')

    def test_unknown_command(self):
        rc, out, err = self.run_cmd('bogus')
        self.assertOneLineError(rc, err, "invalid choice: 'bogus'")

    def test_help_exits_zero(self):
        self.assertRaises(SystemExit, self.run_cmd, 'guest-xml', '--help')


class TestDriverCommandsTest(CommandTestCase):
    """boot, memstats and destroy on test:///default: plumbing only."""

    def setUp(self):
        super().setUp()
        # test:///default forgets its domains when its last connection
        # closes, and every command opens and drops its own.
        keeper = libvirt_host.Host('test:///default')
        keeper.get_connection()
        self.addCleanup(keeper.close)

    def _conf(self):
        path = self._file('nova.conf', '[libvirt]\nvirt_type = qemu\n'
                          'connection_uri = test:///default\n'
                          f'[DEFAULT]\nstate_path = {self.tmp}\n')
        return ['--config-file', path]

    def test_boot_memstats_destroy(self):
        rc, out, err = self.run_cmd(*self._conf(), 'boot', 'cli-guest',
                                    '--kernel', self.kernel)
        self.addCleanup(self.run_cmd, *self._conf(), 'destroy', 'cli-guest')
        self.assertEqual(0, rc, err)
        uuid = out.strip()
        self.assertEqual(36, len(uuid))
        self.assertIn('destroy cli-guest', err)

        rc, out, err = self.run_cmd(*self._conf(), 'memstats', '--format',
                                    'json', 'cli-guest', 'nope')
        self.assertEqual(0, rc, err)
        rows = json.loads(out)
        self.assertEqual(['cli-guest', 'nope'], [r['name'] for r in rows])
        self.assertEqual(uuid, rows[0]['uuid'])
        self.assertEqual(10, rows[0]['period'])
        self.assertEqual('error', rows[1]['stats_state'])

        rc, out, err = self.run_cmd(*self._conf(), 'memstats')
        self.assertEqual(0, rc, err)
        self.assertIn('cli-guest', out)
        self.assertIn('NAME', out.splitlines()[0])

        rc, out, err = self.run_cmd(*self._conf(), 'destroy', 'cli-guest')
        self.assertEqual(0, rc, err)
        rc, out, err = self.run_cmd(*self._conf(), 'destroy', 'cli-guest')
        self.assertOneLineError(rc, err, 'No guest named cli-guest', code=1)

    def test_memstats_connection_failure(self):
        path = self._file('bad.conf',
                          '[libvirt]\nconnection_uri = nope:///x\n')
        rc, out, err = self.run_cmd('--config-file', path, 'memstats')
        self.assertOneLineError(rc, err, 'Cannot connect to nope:///x',
                                code=1)
        self.assertEqual('', out)

    def test_demo_refuses_disabled_period(self):
        conf = self._file('off.conf',
                          '[libvirt]\nmem_stats_period_seconds = 0\n')
        rc, out, err = self.run_cmd('--config-file', conf, 'demo')
        self.assertOneLineError(rc, err, 'pass --period N')

    def test_demo_period_bounded_like_the_option(self):
        for value in ('0', '2147483648', '-1', 'x'):
            rc, out, err = self.run_cmd(*self._conf(), 'demo', '--period',
                                        value)
            self.assertOneLineError(
                rc, err, f"--period: '{value}' is not an integer from 1 to "
                         '2147483647')
