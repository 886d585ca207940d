"""The operator's path: separate processes on a real libvirt.

``nova-libvirt`` and ``nova-libvirt-exporter`` run as the console scripts
an operator runs, each in a process of its own, with a configuration file;
guests are changed with ``virsh`` as an operator (or Nova) would. The
"system" libvirtd is one of the test process's own (PrivateLibvirtd:
Debian's libvirtd and virtlogd in a mount namespace whose libvirt
directories are the test run's), never the host's: the host's daemon, its
guests, their XML and logs are not touched, and ``--all`` reaches only the
tests' guests. Every guest a test boots is destroyed in its clean-up, and
every process it starts is stopped. Tests write only under the run's
temporary directory.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request

import fixtures

from nova import test
from nova import testimage
from nova.tests.fixtures import private_libvirtd
from nova.tests.fixtures import prometheus_server
from nova.tests.functional.libvirt import base as qemu_base
from nova.virt.libvirt import embed

BIN = os.path.join(sys.prefix, 'bin')
# Guests of these tests are named so: clean-up finds what a test left.
PREFIX = 'ft-op-'


class OperatorTestCase(test.TestCase):
    """Runs the commands as processes on ``uri`` ('system' or 'embedded')."""

    uri = 'system'

    def setUp(self):
        super().setUp()
        reason = qemu_base.host_cannot_run_qemu()
        if reason:
            self.skipTest(f'Cannot run QEMU on this host: {reason}.')
        self.useFixture(fixtures.Timeout(300, gentle=True))
        # Readable by the daemon's QEMU user.
        self.work = tempfile.mkdtemp(prefix='nlv-op-',
                                     dir=private_libvirtd.RUN_TMP)
        self.addCleanup(shutil.rmtree, self.work, ignore_errors=True)
        os.chmod(self.work, 0o755)
        self.images = self._images()
        if self.uri == 'system':
            reason = private_libvirtd.PrivateLibvirtd.why_not()
            if reason:
                self.skipTest(f'Cannot run a libvirtd of the test\'s own: '
                              f'{reason}.')
            private_libvirtd.PrivateLibvirtd.ensure()
            self.connection_uri = private_libvirtd.PrivateLibvirtd.uri
        else:
            # Said outright: empty would mean the host's libvirtd where
            # one runs, which the suite never touches.
            self.connection_uri = embed.embed_uri(
                f'{self.work}/state/libvirt/qemu-embed')
        self.conf = self.write_conf('main.conf', f"""
[DEFAULT]
state_path = {self.work}/state
instances_path = {self.work}/instances
[libvirt]
virt_type = qemu
connection_uri = {self.connection_uri}
mem_stats_period_seconds = 2
mem_stats_poll_timeout = 5
""")
        self.virsh_uri = self.connection_uri

    def _images(self) -> dict:
        """The test image, copied where the daemon's QEMU may read it."""
        images = {}
        for variant, image in testimage.get_images(
                qemu_base.IMAGE_CACHE).items():
            paths = []
            for path in (image.kernel_path, image.ramdisk_path):
                copy = os.path.join(self.work, os.path.basename(path))
                if not os.path.exists(copy):
                    shutil.copy(path, copy)
                    os.chmod(copy, 0o644)
                paths.append(copy)
            images[variant] = paths
        return images

    def write_conf(self, name: str, text: str) -> str:
        path = os.path.join(self.work, name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def nova_libvirt(self, *args, conf_files=(), check=True,
                     timeout: float = 120) -> subprocess.CompletedProcess:
        """The console script, as an operator runs it."""
        argv = [os.path.join(BIN, 'nova-libvirt'), '--config-file',
                self.conf]
        for path in conf_files:
            argv += ['--config-file', path]
        result = subprocess.run(argv + list(args), capture_output=True,
                                text=True, timeout=timeout)
        if check and result.returncode:
            self.fail(f'nova-libvirt {" ".join(args)} exited '
                      f'{result.returncode}: {result.stderr}')
        return result

    def virsh(self, *args, check=True) -> subprocess.CompletedProcess:
        result = subprocess.run(['virsh', '-q', '-c', self.virsh_uri,
                                 *args], capture_output=True, text=True,
                                timeout=60)
        if check and result.returncode:
            self.fail(f'virsh {" ".join(args)}: {result.stderr}')
        return result

    def boot(self, name: str, period: int = 2) -> None:
        """Boot with one process; its clean-up destroys it with another."""
        self.assertTrue(name.startswith(PREFIX))
        self.addCleanup(self._destroy, name)
        extra = self.write_conf(f'period-{period}.conf',
                                f'[libvirt]\nmem_stats_period_seconds = '
                                f'{period}\n')
        kernel, initrd = self.images['balloon']
        result = self.nova_libvirt(
            'boot', name, '--kernel', kernel, '--initrd', initrd,
            '--cmdline', testimage.CMDLINE, '--project-name', 'ops',
            '--wait', '90', conf_files=[extra])
        # boot --wait returns once the guest has reported, and says so
        self.assertIn(f'{name} is ok after', result.stderr)
        # its advice names the configuration it was given, so it reaches
        # the same libvirt
        self.assertIn(f'"nova-libvirt --config-file {self.conf} '
                      f'--config-file {extra} destroy {name}" stops it',
                      result.stderr)

    def _destroy(self, name: str) -> None:
        result = self.nova_libvirt('destroy', name, check=False)
        if result.returncode and 'No guest named' not in result.stderr:
            self.fail(f'destroy {name}: {result.stderr}')
        self.assertEqual([], qemu_base.qemu_processes(name, self.work),
                         f'QEMU still runs guest {name} after destroy')

    def memstats(self, *names) -> dict:
        """{name: row} from a fresh ``nova-libvirt memstats`` process."""
        out = self.nova_libvirt('memstats', '--format', 'json',
                                *names).stdout
        return {row['name']: row for row in json.loads(out)}

    def freeze(self, name: str) -> int:
        """SIGSTOP the guest's QEMU; the clean-up always thaws it."""
        pids = qemu_base.qemu_processes(name, self.work)
        self.assertEqual(1, len(pids), f'QEMU processes of {name}')
        self.addCleanup(qemu_base.RealQemuTestCase.thaw, pids[0])
        os.kill(pids[0], signal.SIGSTOP)
        return pids[0]


class ExporterTestCase(OperatorTestCase):
    """Runs the exporter's console script against the system daemon."""

    def start_exporter(self, extra: str = '', wait: bool = True,
                       address: str = '127.0.0.1',
                       port: int | None = None) -> str:
        """Start the console script on ``address`` (a free port unless
        ``port``); its URL once it serves (or at once, without
        ``wait``).
        """
        port = port or prometheus_server.free_port()
        conf = self.write_conf(f'exporter-{address}-{port}.conf',
                               f'[exporter]\nlisten_address = {address}\n'
                               f'listen_port = {port}\n{extra}')
        log = open(os.path.join(self.work, f'exporter-{address}-{port}.log'),
                   'w')
        self.addCleanup(log.close)
        proc = subprocess.Popen(
            [os.path.join(BIN, 'nova-libvirt-exporter'),
             '--config-file', self.conf, '--config-file', conf],
            stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(self._stop, proc)
        if not hasattr(self, 'exporters'):
            self.exporters = []
        self.exporters.append(proc)
        url = f'http://{address}:{port}/metrics'
        if not wait:
            return url

        def serving():
            try:
                with urllib.request.urlopen(url, timeout=1):
                    return True
            except OSError:
                return False
        self.wait_for('the exporter to serve', serving, 30, 0.1)
        return url

    def _stop(self, proc):
        if proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            self.assertEqual(0, proc.wait(timeout=10))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise

    @staticmethod
    def scrape(url: str, timeout: float = 15) -> str:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read().decode()

    def boot_ok(self, *names):
        # One at a time: boots in parallel on the system libvirtd (guests
        # sharing one kernel file) once waited past defineXML's 30 s.
        for name in names:
            self.boot(name, period=2)
        self.wait_for('the guests to report', lambda: all(
            row['stats_state'] == 'ok'
            for row in self.memstats(*names).values()), 60)
