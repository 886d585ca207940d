"""Tests for the nova-libvirt command line."""

import json
import os
import sys

import fixtures

from nova import exception
from nova.cmd import libvirt as cmd
from nova.tests.unit.cmd import base
from nova.virt.libvirt import config
from nova.virt.libvirt import host as libvirt_host


class BootImageTest(base.CommandTestCase):

    def test_image_a_daemons_qemu_cannot_reach_is_refused_first(self):
        # (before any connection: this libvirtd does not exist)
        closed = os.path.join(self.tmp, 'closed')
        os.makedirs(closed, mode=0o700)
        os.chmod(self.tmp, 0o755)
        kernel = os.path.join(closed, 'vmlinuz')
        with open(kernel, 'w') as f:
            f.write('x')
        conf = self._file('nova.conf', '[libvirt]\nconnection_uri = '
                          'qemu+unix:///system?socket=/nonexistent\n')
        rc, out, err = self.run_cmd('--config-file', conf, 'boot', 'g',
                                    '--kernel', kernel)
        first = cmd.closed_to_others(kernel)  # the test's TMPDIR, or ours
        self.assertTrue(closed.startswith(first), first)
        self.assertOneLineError(rc, err, f'--kernel {kernel}: libvirtd runs '
                                f'QEMU as its own user, which cannot read '
                                f'it ({first} is closed to other users)')
        self.assertIn('/var/lib/libvirt/images', err)
        self.assertIsNone(cmd.closed_to_others('/usr/bin/env'))


class GuestXmlTest(base.CommandTestCase):

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
            (('--disk', 'KERNEL', '--project-id', 'nope'),
             "Instance project_id 'nope' is not a UUID"),
            (('--disk', 'KERNEL', '--user-id', '12'),
             "Instance user_id '12' is not a UUID"),
            (('--disk', 'KERNEL', '--flavor-name', ' '),
             "Instance flavor_name ' ' is empty"),
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


class TestDriverCommandsTest(base.CommandTestCase):
    """boot, memstats and destroy on test:///default: plumbing only."""

    def setUp(self):
        super().setUp()
        # test:///default forgets its domains when its last connection
        # closes, and every command opens and drops its own.
        keeper = libvirt_host.Host('test:///default')
        keeper.connect()
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
        # a named guest that is not there fails the command, as virsh
        self.assertEqual(1, rc, err)
        self.assertIn('nova-libvirt: error: No guest named nope on '
                      'test:///default', err)
        rows = json.loads(out)
        self.assertEqual(['cli-guest', 'nope'], [r['name'] for r in rows])
        self.assertEqual(uuid, rows[0]['uuid'])
        self.assertEqual(10, rows[0]['period'])
        self.assertEqual('error', rows[1]['stats_state'])
        # the name not there is not counted as a guest read
        self.assertIn('nova-libvirt: memstats read 1 guest (1 not found) '
                      'on test:///default', err)

        rc, out, err = self.run_cmd(*self._conf(), 'memstats')
        self.assertEqual(0, rc, err)
        self.assertIn('cli-guest', out)
        self.assertIn('NAME', out.splitlines()[0])
        # it says which libvirt it read, and why that one
        self.assertIn('nova-libvirt: memstats read 2 guests on '
                      'test:///default ([libvirt] connection_uri).', err)

        rc, out, err = self.run_cmd(*self._conf(), 'destroy', 'cli-guest')
        self.assertEqual(0, rc, err)
        rc, out, err = self.run_cmd(*self._conf(), 'destroy', 'cli-guest')
        self.assertOneLineError(rc, err, 'No guest named cli-guest', code=1)

    def test_memstats_connection_failure(self):
        uri = 'qemu+unix:///system?socket=/nonexistent/libvirt-sock'
        path = self._file('bad.conf', f'[libvirt]\nconnection_uri = {uri}\n')
        rc, out, err = self.run_cmd('--config-file', path, 'memstats')
        self.assertOneLineError(rc, err, f'Cannot connect to {uri}', code=1)
        self.assertEqual('', out)

    def test_uri_of_no_libvirt_driver_refused_at_load(self):
        path = self._file('bad.conf',
                          '[libvirt]\nconnection_uri = garbage://\n')
        rc, out, err = self.run_cmd('--config-file', path, 'memstats')
        self.assertOneLineError(rc, err, '[libvirt] connection_uri = '
                                'garbage:// (in ')
        self.assertIn('such as qemu:///system', err)

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


NODE_XML = """<node>
{domains}
</node>"""
DOMAIN = """<domain type='test'
    xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
  <name>{name}</name><memory>262144</memory><os><type>hvm</type></os>
  <devices>{balloon}</devices>{extra}
</domain>"""


def _balloon(period, reporting='on'):
    """A balloon as Nova 32 and later write it (free page reporting
    on), with ``period``.
    """
    if period == 'none':
        return "<memballoon model='none'/>"
    stats = '' if period is None else f"<stats period='{period}'/>"
    return (f"<memballoon model='virtio' freePageReporting='{reporting}'>"
            f"{stats}</memballoon>")


def _nova_metadata(flavor=None, image=None) -> str:
    """Nova's <nova:instance> metadata asking for a period by flavor
    and/or image.
    """
    spec = ('' if flavor is None else
            f'<nova:extraSpec name="hw:mem_stats_period_seconds">{flavor}'
            '</nova:extraSpec>')
    prop = ('' if image is None else
            f'<nova:property name="hw_mem_stats_period_seconds">{image}'
            '</nova:property>')
    return ('<metadata><nova:instance xmlns:nova="http://openstack.org/'
            'xmlns/libvirt/nova/1.1"><nova:name>x</nova:name>'
            '<nova:flavor name="f" id="1"><nova:extraSpecs>'
            f'<nova:extraSpec name="hw:cpu_policy">shared</nova:extraSpec>'
            f'{spec}</nova:extraSpecs></nova:flavor><nova:image uuid="">'
            f'<nova:properties>{prop}</nova:properties></nova:image>'
            '</nova:instance></metadata>')


class PeriodCommandsTest(base.CommandTestCase):
    """set-period and reconcile on libvirt's test driver, fed a host of
    guests of every kind (a fresh copy per command).
    """

    GUESTS = {
        'run30': (30, ''),
        'run5': (5, ''),
        'off30': (30, '<test:runstate>5</test:runstate>'),
        'trans30': (30, '<test:transient/>'),
        'disabled': ('none', ''),
    }

    def _conf(self, period=5, guests=None):
        domains = '\n'.join(
            DOMAIN.format(name=name, balloon=_balloon(p), extra=extra)
            for name, (p, extra) in (guests or self.GUESTS).items())
        node = self._file('node.xml', NODE_XML.format(domains=domains))
        return ['--config-file', self._file(
            'nova.conf', f'[libvirt]\nconnection_uri = test://{node}\n'
                         f'mem_stats_period_seconds = {period}\n')]

    def _lines(self, out):
        return {line.split(':')[0]: line for line in out.splitlines()}

    def test_set_period_every_kind(self):
        rc, out, err = self.run_cmd(*self._conf(), 'set-period', '2',
                                    '--all')
        self.assertEqual(1, rc, err)  # the disabled guest cannot change
        self.assertRegex(err, r'^nova-libvirt: set-period on test://\S+ '
                              r'\(\[libvirt\] connection_uri\)\.\n$')
        lines = self._lines(out)
        self.assertIn('period 30s -> 2s, live and in the persistent '
                      'definition', lines['run30'])
        self.assertIn('live only (transient guest', lines['trans30'])
        self.assertIn('persistent definition only (guest is shut off',
                      lines['off30'])
        self.assertIn('cannot change', lines['disabled'])
        self.assertIn('hard reboot', lines['disabled'])
        self.assertEqual('set-period: 4 changed, 0 unchanged, 1 cannot '
                         'change, 0 failed', out.splitlines()[-1])

    def test_set_period_named_all_right(self):
        rc, out, err = self.run_cmd(*self._conf(), 'set-period', '5',
                                    'run5', 'run30')
        self.assertEqual(0, rc, out + err)
        self.assertEqual(['run5', 'run30', 'set-period'],
                         [line.split(':')[0] for line in out.splitlines()])
        self.assertIn('already 5s', out.splitlines()[0])

    def test_set_period_missing_guest_does_not_stop_others(self):
        rc, out, err = self.run_cmd(*self._conf(), 'set-period', '2',
                                    'nope', 'run30')
        self.assertEqual(1, rc)
        lines = out.splitlines()
        self.assertIn('No guest named nope', lines[0])
        self.assertIn('run30: period 30s -> 2s', lines[1])

    def test_set_period_zero(self):
        rc, out, err = self.run_cmd(*self._conf(), 'set-period', '0',
                                    'run30', 'disabled')
        self.assertEqual(0, rc, out)
        lines = self._lines(out)
        self.assertIn('last figures go stale', lines['run30'])
        self.assertIn('already disabled', lines['disabled'])

    def test_set_period_changes_the_guest(self):
        # One connection for both commands: the test driver keeps state
        # per connection to a file.
        conf = self._conf()
        host = libvirt_host.Host(
            'test://' + os.path.join(self.tmp, 'node.xml'))
        self.addCleanup(host.close)
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.driver.libvirt_host.Host',
            return_value=host))
        rc, out, err = self.run_cmd(*conf, 'set-period', '2', 'off30',
                                    '--dry-run')
        self.assertEqual(0, rc)
        self.assertIn('(dry run: nothing was changed)', out)
        guest = host.get_guest('off30')
        self.assertIn("period='30'", guest.get_xml_desc(inactive=True))
        rc, out, err = self.run_cmd(*conf, 'set-period', '2', 'off30')
        self.assertEqual(0, rc)
        self.assertIn("period='2'", guest.get_xml_desc(inactive=True))
        rc, out, err = self.run_cmd(*conf, 'set-period', '2', 'off30')
        self.assertIn('already 2s', out)

    def test_stuck_guest_cannot_change_now_dry_run_says_so(self):
        # A guest whose QEMU has not answered for 12 s: libvirt would wait
        # for the job the stuck call holds, live and persistent alike.
        def busy(guest):
            return 12.0 if guest.name == 'run30' else None
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.guest.Guest.monitor_busy', busy))
        for extra in (('--dry-run',), ()):
            rc, out, err = self.run_cmd(*self._conf(), 'set-period', '2',
                                        'run30', 'off30', *extra)
            self.assertEqual(1, rc, out + err)
            lines = self._lines(out)
            self.assertIn('run30: cannot change now: its QEMU has not '
                          'answered libvirt for 12s', lines['run30'])
            self.assertIn('kill -CONT', lines['run30'])
            self.assertNotIn('live and in the persistent', lines['run30'])
            would = 'would change ' if extra else ''
            self.assertIn(f'off30: {would}period 30s -> 2s', lines['off30'])
            self.assertIn(f'1 {would or "changed"}'.strip() +
                          ', 0 unchanged, 0 cannot change, 1 failed',
                          out.splitlines()[-1])
            self.assertEqual(bool(extra), '(dry run: nothing was changed)'
                             in out.splitlines()[-1])

    def test_dry_run_says_what_would_change(self):
        rc, dry, err = self.run_cmd(*self._conf(), 'set-period', '2',
                                    '--all', '--dry-run')
        rc2, real, err = self.run_cmd(*self._conf(), 'set-period', '2',
                                      '--all')
        self.assertEqual(rc, rc2)
        # the same lines, but a change said as one that would be made
        # (a dry run's lines once read as if done)
        self.assertEqual([line.replace(': period ', ': would change period ')
                          for line in real.splitlines()[:-1]],
                         dry.splitlines()[:-1])
        self.assertIn('would change period', dry)
        self.assertIn('would change,', dry.splitlines()[-1])

    def test_set_period_bad_input(self):
        for args, words in (
                (('-1', '--all'), "SECONDS: '-1' is not an integer from 0 "
                                  'to 2147483647'),
                (('2147483648', '--all'), "'2147483648' is not an integer"),
                (('1.5', '--all'), "'1.5' is not an integer"),
                (('2',), 'give the guests to change (NAME ...) or --all'),
                # nothing: argparse would call NAME required, not --all
                ((), 'give the period and the guests to change: SECONDS '
                     'NAME ..., or SECONDS --all'),
                (('2', 'run30', '--all'), 'guest names or --all, not both'),
                # names after --all, which argparse cannot place
                (('2', '--all', 'run30'), 'guest names or --all, not both')):
            rc, out, err = self.run_cmd(*self._conf(), 'set-period', *args)
            self.assertOneLineError(rc, err, words)

    def test_reconcile(self):
        rc, out, err = self.run_cmd(*self._conf(period=5), 'reconcile')
        self.assertEqual(0, rc, out + err)  # needing recreation: no failure
        lines = self._lines(out)
        self.assertIn('already 5s', lines['run5'])
        self.assertIn('30s -> 5s', lines['run30'])
        # it asks for the option's period, which it was created without
        self.assertIn('it asks for a 5s period ([libvirt] '
                      'mem_stats_period_seconds) but was created without '
                      'one: recreate it', lines['disabled'])
        self.assertEqual('reconcile: 3 changed, 1 already right, 1 need '
                         'recreation, 0 failed', out.splitlines()[-1])

    def test_reconcile_disabled_stops_reports(self):
        rc, out, err = self.run_cmd(*self._conf(period=-1), 'reconcile',
                                    '--dry-run')
        self.assertEqual(0, rc, out)
        self.assertIn('statistics disabled', out.splitlines()[0])
        lines = self._lines(out)
        self.assertIn('30s -> 0 (reports stop', lines['run30'])
        self.assertIn('already disabled', lines['disabled'])

    def test_reconcile_gives_each_guest_the_period_it_asks_for(self):
        guests = {
            'plain30': (30, ''),
            'flavor2': (30, _nova_metadata(flavor=2)),
            'flavor-off': (30, _nova_metadata(flavor=0)),
            'image7': (30, _nova_metadata(image=7)),
            'both3': (30, _nova_metadata(flavor=3, image=3)),
            'conflict': (30, _nova_metadata(flavor=2, image=5)),
            'bad': (30, _nova_metadata(flavor='two')),
        }
        rc, out, err = self.run_cmd(*self._conf(period=5, guests=guests),
                                    'reconcile')
        self.assertEqual(1, rc, out + err)  # two guests cannot be told
        lines = self._lines(out)
        self.assertIn('bringing every guest to the period it asks for',
                      out.splitlines()[0])
        self.assertIn('else 5s ([libvirt] mem_stats_period_seconds)',
                      out.splitlines()[0])
        self.assertIn('30s -> 5s', lines['plain30'])
        self.assertNotIn('asks', lines['plain30'])
        self.assertIn('30s -> 2s', lines['flavor2'])
        self.assertIn('(as its flavor extra spec hw:mem_stats_period_seconds '
                      'asks)', lines['flavor2'])
        self.assertIn('30s -> 0 (reports stop', lines['flavor-off'])
        self.assertIn('30s -> 7s', lines['image7'])
        self.assertIn('its image property hw_mem_stats_period_seconds',
                      lines['image7'])
        self.assertIn('30s -> 3s', lines['both3'])
        self.assertIn('cannot tell the period it asks for: The flavor and '
                      'the image disagree', lines['conflict'])
        self.assertIn("hw:mem_stats_period_seconds='two' is not valid",
                      lines['bad'])
        self.assertEqual('reconcile: 5 changed, 0 already right, 0 need '
                         'recreation, 2 failed', out.splitlines()[-1])
        # a new option touches only the guests that ask for nothing
        rc, out, err = self.run_cmd(*self._conf(period=9, guests={
            'plain30': (30, ''), 'flavor2': (2, _nova_metadata(flavor=2))}),
            'reconcile', '--dry-run')
        lines = self._lines(out)
        self.assertIn('30s -> 9s', lines['plain30'])
        self.assertIn('already 2s', lines['flavor2'])

    def test_reconcile_fails_only_on_libvirt_errors(self):
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.guest.Guest.set_memory_stats_period',
            side_effect=exception.LibvirtCallFailed(
                call='setMemoryStatsPeriod()', name='x', reason='boom')))
        rc, out, err = self.run_cmd(*self._conf(period=5), 'reconcile')
        self.assertEqual(1, rc)
        self.assertIn('boom', self._lines(out)['run30'])
        self.assertIn('already 5s', self._lines(out)['run5'])


class AdviceTest(base.CommandTestCase):
    """Commands named in advice carry the configuration in use."""

    def test_command_carries_config_file_and_dir(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        conf = os.path.join(tmp, 'my nova.conf')
        with open(conf, 'w') as f:
            f.write('[libvirt]\nvirt_type = qemu\n')
        os.mkdir(os.path.join(tmp, 'conf.d'))
        cmd.configure(['--config-file', conf, '--config-dir',
                       os.path.join(tmp, 'conf.d')])
        self.assertEqual(
            f"nova-libvirt --config-file '{conf}' --config-dir "
            f"{tmp}/conf.d destroy g1", cmd.command('destroy', 'g1'))

    def test_boot_takes_virt_type(self):
        e = self.assertRaises(SystemExit, self.run_cmd, 'boot', '--help')
        self.assertEqual(0, e.code)
        self.assertIn('--virt-type {qemu,kvm}', sys.stdout.getvalue())
