"""The service as an operator runs it, under a real, booted systemd.

One throw-away host (nova.tests.fixtures.nspawn.BootedHost: an overlay of
this machine's root on a tmpfs, booted by systemd-nspawn with a private
network) goes through an operator's whole path: ``tools/install-service``
with Debian's own ``/usr/bin/python3``, a boot that starts the exporter on
the socket systemd holds for it, a real guest on the container's own
socket-activated libvirtd, the privilege split (the exporter reads through
libvirt's read-only socket as a user that can change nothing; the writer,
nova-libvirt-reconcile, runs when the configuration changes), reload, the
watchdog, a restart that refuses no scrape, stop, a second boot, an
upgrade while it runs, and ``--uninstall``. Every step is one the operator
takes, run as a process in the container. The host's libvirtd, its guests
and its files are never touched.
"""

import os
import re
import shutil
import subprocess
import time

import fixtures
import testtools

from nova import test
from nova import testimage
from nova.tests.fixtures import nspawn
from nova.tests.functional.libvirt import base as qemu_base

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))))
UNIT = 'nova-libvirt-exporter.service'
SOCKET = 'nova-libvirt-exporter.socket'
WRITER_UNIT = 'nova-libvirt-reconcile.service'
UNITS = (SOCKET, UNIT, WRITER_UNIT, 'nova-libvirt-reconcile.path',
         'nova-libvirt-reconcile.timer')
PREFIX = '/opt/nova-libvirt'
CONF = '/etc/nova/nova.conf'
INSTALL = f'{nspawn.BootedHost.SRC}/tools/install-service'
USER = 'nova-libvirt'
WRITER = 'nova-libvirt-reconcile'
GUEST = 'ft-sd-guest'
IMAGES = '/var/lib/nova-libvirt-test'
METRICS = 'http://127.0.0.1:9179/metrics'
HEALTHY = 'http://127.0.0.1:9179/-/healthy'
# A line of the kernel's audit log for a seccomp kill (type=1326).
SECCOMP = re.compile(r'type=1326.*?comm="([^"]*)".*?syscall=(\d+)')


def _syscall_names() -> dict[int, str]:
    """{number: name} of this machine's x86-64 system calls."""
    names = {}
    try:
        with open('/usr/include/x86_64-linux-gnu/asm/unistd_64.h') as f:
            for line in f:
                m = re.match(r'#define __NR_(\w+) (\d+)', line)
                if m:
                    names[int(m.group(2))] = m.group(1)
    except OSError:
        pass
    return names


class ServiceUnderSystemdTest(test.TestCase):

    def setUp(self):
        super().setUp()
        reason = nspawn.why_not()
        if reason:
            self.skipTest(f'cannot boot systemd here: {reason}')
        self.useFixture(fixtures.Timeout(1200, gentle=True))
        self.host = self.useFixture(nspawn.BootedHost(TOP))
        # The kernel's log is the host's: only lines after this count.
        self._kernel_lines = len(self._dmesg())
        self.addOnException(self._explain)

    @staticmethod
    def _dmesg() -> list[str]:
        result = subprocess.run(['dmesg'], capture_output=True, text=True,
                                timeout=30)
        return result.stdout.splitlines()

    # -- helpers ------------------------------------------------------------

    def _explain(self, exc_info):
        """On failure: the unit's journal and any seccomp kill, by name."""
        if self.host.init_pid is not None:
            journal = self.host.run(['journalctl', '--no-pager', '-o',
                                     'short-monotonic', '-u', UNIT,
                                     '-n', '80']).stdout
            self.addDetail('journal', testtools.content.text_content(
                journal))
        kernel = '\n'.join(self._dmesg()[self._kernel_lines:])
        names = _syscall_names()
        kills = [f'{comm} killed by seccomp at syscall '
                 f'{names.get(int(nr), nr)} ({nr})'
                 for comm, nr in SECCOMP.findall(kernel)]
        if kills:
            self.addDetail('seccomp', testtools.content.text_content(
                '\n'.join(kills)))

    def show(self, *props, unit=UNIT) -> dict:
        out = self.host.run(['systemctl', 'show', unit, '-p',
                             ','.join(props)], check=True).stdout
        return dict(line.split('=', 1) for line in out.splitlines()
                    if '=' in line)

    def get(self, url: str, timeout: float = 20):
        """(HTTP status, body) of ``url``, asked by curl in the
        container; status 0 when nothing answers.
        """
        result = self.host.run(['curl', '-s', '-m', str(timeout), '-o',
                                '-', '-w', '\n%{http_code}', url],
                               timeout=timeout + 10)
        body, _, code = result.stdout.rpartition('\n')
        return int(code or 0), body

    def wait_active(self, what: str, restarts: str = '0') -> dict:
        """The unit's state once it runs; fails at once if it failed or
        restarted more than ``restarts`` times.
        """
        def active():
            state = self.show('ActiveState', 'SubState', 'MainPID',
                              'NRestarts', 'Result')
            if state['ActiveState'] == 'failed' or \
                    state['NRestarts'] != restarts:
                self.fail(f'{what}: the unit failed or restarted: {state}')
            return state if state['SubState'] == 'running' else None
        return self.wait_for(f'{UNIT} running ({what})', active, 90)

    def journal(self, unit=UNIT) -> str:
        return self.host.run(['journalctl', '--no-pager', '-o', 'cat',
                              '-u', unit]).stdout

    def groups(self, user: str) -> list[str]:
        return self.host.run(['id', '-nG', user],
                             check=True).stdout.split()

    def live_period(self, name: str) -> str | None:
        """The guest's live statistics period, read read-only."""
        xml = self.host.run(['virsh', '-r', '-c', 'qemu:///system',
                             'dumpxml', name], check=True).stdout
        m = re.search(r"<stats period='(\d+)'", xml)
        return m.group(1) if m else None

    def _install(self):
        """install-service as an operator runs it, with the host's
        network (pip) and Debian's python3, before the first boot.
        """
        result = self.host.run_once([INSTALL], timeout=900)
        self.assertEqual(0, result.returncode,
                         f'install-service failed: {result.stderr[-3000:]}'
                         f'{result.stdout[-2000:]}')
        out = result.stdout
        self.assertIn(f'creating the virtualenv {PREFIX} with '
                      '/usr/bin/python3', out)
        self.assertIn(f'user {USER} created', out)
        self.assertIn(f'user {WRITER} created', out)
        self.assertIn(f'user {WRITER} added to group libvirt', out)
        self.assertNotIn(f'user {USER} added', out)
        self.assertIn('configuration written', out)
        # systemd is not running yet: the units are enabled, not started
        for unit in (SOCKET, UNIT, 'nova-libvirt-reconcile.path',
                     'nova-libvirt-reconcile.timer'):
            self.assertIn(f'enabled {unit}', out)
        self.assertIn('systemd does not run here, so nothing was started',
                      out)
        with open(f'{self.host.root}{PREFIX}/pyvenv.cfg') as f:
            self.assertIn('home = /usr/bin', f.read())
        return out

    def _copy_images(self):
        """The test guest's kernel and initramfs, where the container's
        QEMU (user libvirt-qemu) can read them.
        """
        dest = f'{self.host.root}{IMAGES}'
        os.makedirs(dest, exist_ok=True)
        image = testimage.get_images(qemu_base.IMAGE_CACHE)['balloon']
        paths = []
        for path in (image.kernel_path, image.ramdisk_path):
            shutil.copy(path, dest)
            os.chmod(f'{dest}/{os.path.basename(path)}', 0o644)
            paths.append(f'{IMAGES}/{os.path.basename(path)}')
        os.chmod(dest, 0o755)
        return paths

    # -- the operator's path ------------------------------------------------

    def scrapes_during(self, action: str, count: int = 40) -> list[str]:
        """HTTP status of ``count`` scrapes, each on a new connection, one
        after another while ``action`` (a shell command) runs in the
        container.
        """
        script = (f'( sleep 0.3; {action} ) & '
                  f'for i in $(seq {count}); do curl -s -o /dev/null -m 15 '
                  f"-w '%{{http_code}}\\n' {HEALTHY}; sleep 0.05; done; "
                  'wait')
        return self.host.sh(script, timeout=120).stdout.split()

    def test_install_boot_serve_split_reload_watchdog_upgrade_remove(self):
        self._install()
        kernel, initrd = self._copy_images()
        with open(f'{self.host.root}{CONF}', 'a') as f:
            f.write('\n[libvirt]\nvirt_type = qemu\n'
                    'mem_stats_period_seconds = 2\n'
                    '# kept across upgrades\n')

        # 1. Started at boot on systemd's socket, with no network of its
        # own; it runs as its own user, in no libvirt group, with no
        # capability.
        self.host.boot()
        state = self.wait_active('first boot')
        pid = state['MainPID']
        self.assertEqual('active', self.host.run(
            ['systemctl', 'is-active', SOCKET]).stdout.strip())
        status = self.host.run(['cat', f'/proc/{pid}/status'],
                               check=True).stdout
        self.assertRegex(status, r'CapEff:\s+0+\n')
        self.assertRegex(status, r'CapPrm:\s+0+\n')
        uid = self.host.run(['id', '-u', USER], check=True).stdout.split()[0]
        self.assertRegex(status, rf'Uid:\s+{uid}\s+{uid}\s')
        self.assertEqual([USER], self.groups(USER))
        self.assertIn('libvirt', self.groups(WRITER))
        netns = self.host.run(['readlink', f'/proc/{pid}/ns/net', '/proc/1/'
                               'ns/net'], check=True).stdout.split()
        self.assertNotEqual(netns[0], netns[1])  # PrivateNetwork=yes
        devices = self.host.run(['cat', f'/proc/{pid}/net/dev'],
                                check=True).stdout
        self.assertEqual(['lo'], [line.split(':')[0].strip() for line in
                                  devices.splitlines()[2:]])
        self.assertIn('Listening on the socket systemd holds',
                      self.journal())
        # the timer waits for its next run
        self.assertEqual('active', self.host.run(
            ['systemctl', 'is-active', 'nova-libvirt-reconcile.timer']
        ).stdout.strip())

        # 2. A real guest on the container's libvirtd (booted by root, who
        # may write) reports figures, read through the read-only socket.
        boot = self.host.run(
            [f'{PREFIX}/bin/nova-libvirt', '--config-file', CONF, 'boot',
             GUEST, '--kernel', kernel, '--initrd', initrd, '--cmdline',
             testimage.CMDLINE, '--wait', '120'], timeout=240)
        if boot.returncode:
            self.fail(f'a guest does not boot on the container\'s libvirtd '
                      f'({boot.returncode}): {boot.stderr[-2000:]}')

        def reports():
            code, body = self.get(METRICS)
            ok = (f'libvirt_domain_memory_stats_state{{domain="{GUEST}",'
                  'libvirt_domain_memory_stats_state="ok"} 1.0')
            return body if code == 200 and ok in body and \
                'libvirt_up 1.0' in body else None
        body = self.wait_for('the guest\'s ok figures on /metrics', reports,
                             60)
        self.assertRegex(body, rf'libvirt_domain_memory_stats_usable_bytes'
                               rf'\{{domain="{GUEST}".*\}} [1-9]')
        self.assertIn('libvirt_domain_memory_stats_wanted_period_seconds'
                      f'{{domain="{GUEST}"}} 2.0', body)
        self.assertEqual((200, 'Healthy.\n'), self.get(HEALTHY))
        self.assertEqual('0', self.show('NRestarts')['NRestarts'])

        # 3. The exporter's user reads, and can change nothing: libvirt's
        # read-write socket refuses it; the commands that read work.
        as_user = ['runuser', '-u', USER, '--']
        listed = self.host.run(as_user + ['virsh', '-r', '-c',
                                          'qemu:///system', 'list',
                                          '--all'])
        self.assertEqual(0, listed.returncode, listed.stderr)
        self.assertIn(GUEST, listed.stdout)
        self.host.sh('printf "<domain type=\'qemu\'><name>evil</name>'
                     '<memory>65536</memory><os><type>hvm</type></os>'
                     '</domain>" > /tmp/evil.xml', check=True)
        for argv in (['list'], ['define', '/tmp/evil.xml'],
                     ['dommemstat', GUEST, '--period', '9', '--live']):
            refused = self.host.run(as_user + ['virsh', '-c',
                                               'qemu:///system', *argv])
            self.assertNotEqual(0, refused.returncode, argv)
        memstats = self.host.run(as_user + [
            f'{PREFIX}/bin/nova-libvirt', '--config-file', CONF, 'memstats',
            '--format', 'json'], timeout=60)
        self.assertEqual(0, memstats.returncode, memstats.stderr)
        self.assertIn(f'"name": "{GUEST}"', memstats.stdout)
        denied = self.host.run(as_user + [
            f'{PREFIX}/bin/nova-libvirt', '--config-file', CONF,
            'set-period', '9', GUEST], timeout=60)
        self.assertEqual(1, denied.returncode)
        self.assertIn('needs read-write access', denied.stderr)
        self.assertEqual(1, len(denied.stderr.strip().splitlines()),
                         denied.stderr)
        self.assertEqual('2', self.live_period(GUEST))

        # 4. A changed period in the configuration: the path unit runs the
        # writer, the running guest gets it, and the exporter (reloaded)
        # says which period the guest should have.
        began = time.monotonic()
        self.host.sh(f'sed -i "s/^mem_stats_period_seconds = 2/'
                     f'mem_stats_period_seconds = 3/" {CONF}', check=True)
        self.wait_for('the writer to give the guest period 3',
                      lambda: self.live_period(GUEST) == '3', 60)
        took = time.monotonic() - began
        self.addDetail('path-to-period-seconds',
                       testtools.content.text_content(f'{took:.1f}'))
        writer = self.wait_for(
            'the writer to end', lambda: (lambda s: s if s['ActiveState'] in
                                          ('inactive', 'failed') else None)(
                self.show('ActiveState', 'Result', 'ExecMainStatus',
                          unit=WRITER_UNIT)), 60)
        self.assertEqual({'ActiveState': 'inactive', 'Result': 'success',
                          'ExecMainStatus': '0'}, writer)
        said = self.journal(WRITER_UNIT)
        self.assertIn(f'{GUEST}: period 2s -> 3s', said)
        uids = self.host.sh(
            f'journalctl -u {WRITER_UNIT} -o json --no-pager | grep -o '
            '\'"_UID":"[0-9]*"\' | sort -u', check=True).stdout.split()
        writer_uid = self.host.run(['id', '-u', WRITER],
                                   check=True).stdout.strip()
        self.assertIn(f'"_UID":"{writer_uid}"', uids)
        self.wait_for('the reload in the journal', lambda: 'Configuration '
                      'changed: [libvirt] mem_stats_period_seconds = 3' in
                      self.journal(), 30)
        self.assertEqual(pid, self.wait_active('reload')['MainPID'])
        self.wait_for('the wanted period on /metrics', lambda: (
            'libvirt_domain_memory_stats_wanted_period_seconds'
            f'{{domain="{GUEST}"}} 3.0' in self.get(METRICS)[1]), 30)

        # 5. The watchdog restarts an exporter whose loop stopped.
        self.host.run(['kill', '-STOP', pid], check=True)
        state = self.wait_for(
            'the watchdog to restart the stopped exporter',
            lambda: (lambda s: s if s['NRestarts'] == '1' and
                     s['SubState'] == 'running' else None)(
                self.show('NRestarts', 'SubState', 'MainPID')), 90)
        self.assertNotEqual(pid, state['MainPID'])
        self.assertIn('Watchdog timeout', self.journal())

        # 6. A restart refuses no scrape: connections wait on the socket.
        codes = self.scrapes_during(f'systemctl restart {UNIT}')
        self.assertEqual(['200'] * 40, codes)

        # 7. Stop ends it in under 10 s with Result=success; start returns
        # once the port answers (Type=notify).
        began = time.monotonic()
        self.host.run(['systemctl', 'stop', UNIT], check=True, timeout=60)
        self.assertLess(time.monotonic() - began, 10)
        state = self.show('ActiveState', 'Result')
        self.assertEqual({'ActiveState': 'inactive', 'Result': 'success'},
                         state)
        started = self.host.sh(
            f'systemctl start {UNIT} && curl -s -m 5 {HEALTHY}', timeout=60)
        self.assertEqual(0, started.returncode, started.stderr)
        self.assertEqual('Healthy.\n', started.stdout)
        self.host.run([f'{PREFIX}/bin/nova-libvirt', '--config-file', CONF,
                       'destroy', GUEST], check=True, timeout=120)

        # 8. A second boot brings it up again, never restarted.
        self.host.poweroff()
        self.host.boot()
        state = self.wait_active('second boot')
        self.assertEqual('0', state['NRestarts'])
        self.assertEqual(200, self.wait_for(
            '/metrics after the second boot',
            lambda: self.get(METRICS)[0] == 200 and 200, 30))

        # 9. Upgrade while it runs: a new version, restarted, the
        # configuration kept, and an exporter user that had been put in
        # group libvirt (as earlier installs did) taken out of it. The
        # operator's shell has the host's network (pip); the service keeps
        # the container's.
        self.host.run(['gpasswd', '-a', USER, 'libvirt'], check=True)
        self.host.sh(f'cd {nspawn.BootedHost.SRC} && git -c user.name=t '
                     '-c user.email=t@example.invalid commit -q '
                     '--allow-empty -m upgrade', check=True)
        upgrade = self.host.run_in_host_network([INSTALL], timeout=900)
        self.assertEqual(0, upgrade.returncode, upgrade.stderr[-3000:])
        self.assertRegex(upgrade.stdout, r'installed version (\S+) \(was '
                                         r'(?!\1\))\S+\)')
        self.assertIn(f'restarted {UNIT}', upgrade.stdout)
        self.assertIn(f'user {USER} taken out of group libvirt',
                      upgrade.stdout)
        self.assertEqual([USER], self.groups(USER))
        self.assertIn(f'configuration {CONF} exists: left as it is',
                      upgrade.stdout)
        self.assertNotEqual(state['MainPID'],
                            self.wait_active('upgrade')['MainPID'])
        with open(f'{self.host.root}{CONF}') as f:
            self.assertIn('# kept across upgrades', f.read())

        # 10. Removal: what it made is stopped, disabled and gone; the
        # configuration, changed since, stays.
        removed = self.host.run([INSTALL, '--uninstall'], timeout=120)
        self.assertEqual(0, removed.returncode, removed.stderr)
        for said in (f'stopped and disabled {UNIT}',
                     f'stopped and disabled {SOCKET}',
                     'stopped and disabled nova-libvirt-reconcile.timer',
                     f'removed the virtualenv {PREFIX}',
                     f'removed the user {USER}', f'removed the user {WRITER}',
                     f'kept the configuration {CONF} (changed since it '
                     'was written)'):
            self.assertIn(said, removed.stdout)
        for unit in UNITS:
            self.assertIn(f'removed the unit /etc/systemd/system/{unit}',
                          removed.stdout)
        for user in (USER, WRITER):
            self.assertNotEqual(0, self.host.run(['id', user]).returncode)
        self.assertFalse(os.path.exists(f'{self.host.root}{PREFIX}'))
        self.assertTrue(os.path.exists(f'{self.host.root}{CONF}'))
        self.assertEqual('inactive', self.host.run(
            ['systemctl', 'is-active', UNIT]).stdout.strip())
