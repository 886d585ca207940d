"""The operator's path: separate processes on a real libvirt.

``nova-libvirt`` and ``nova-libvirt-exporter`` run as the console scripts
an operator runs, each in a process of its own, with a configuration file;
guests are changed with ``virsh`` as an operator (or Nova) would. The
system libvirtd is the one running, or one started here for this test
process (Debian's libvirt-daemon-system, under tini as a subreaper, with
virtlogd) and stopped when the process exits; a test that restarts it
leaves it running. Every guest a test boots is destroyed in its clean-up,
and every process it starts is stopped. Tests write only under their own
temporary directory.
"""

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import fixtures

from nova import test
from nova.tests.functional.libvirt import base as qemu_base
from nova.virt.libvirt import host as libvirt_host
from nova.virt.libvirt import testimage

SYSTEM_URI = 'qemu:///system'
BIN = os.path.join(sys.prefix, 'bin')
# Guests of these tests are named so: clean-up finds what a test left.
PREFIX = 'ft-op-'


def _pids(name: str) -> list[int]:
    """Pids of processes whose command is ``name``."""
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{pid}/comm') as f:
                if f.read().strip() == name:
                    found.append(int(pid))
        except OSError:
            continue
    return found


def _terminate(proc: subprocess.Popen) -> None:
    """Stop ``proc`` if it runs: SIGTERM, then SIGKILL after 30 s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class SystemLibvirtd:
    """The system libvirtd, running for the tests of this process."""

    _ours: subprocess.Popen | None = None
    _virtlogd: subprocess.Popen | None = None
    _log = None
    #: Why the last check found no libvirtd answering.
    last_error = ''

    @classmethod
    def answers(cls, timeout: float = 5) -> bool:
        """Whether a libvirtd answers, asked by virsh in a process of its
        own: never by this one, which may run the embedded functional
        tests too (stestr may put both groups in one worker), and libvirt
        then routes qemu:///system to the embedded driver."""
        try:
            result = subprocess.run(
                ['virsh', '-c', SYSTEM_URI, 'version', '--daemon'],
                capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            cls.last_error = f'virsh version got no answer in {timeout}s'
            return False
        if result.returncode:
            cls.last_error = ' '.join(result.stderr.split())
        return result.returncode == 0

    @classmethod
    def ensure(cls) -> None:
        """Start libvirtd (and virtlogd) unless a libvirtd answers."""
        if cls.answers():
            return
        if cls._log is None:
            cls._log = tempfile.NamedTemporaryFile(
                'w', prefix='nlv-libvirtd-', suffix='.log', delete=False,
                dir='/tmp')
            atexit.register(cls.stop)
        if not _pids('virtlogd'):
            cls._virtlogd = subprocess.Popen(
                ['tini', '-s', '--', 'virtlogd'], stdout=cls._log,
                stderr=subprocess.STDOUT, start_new_session=True)
        cls._ours = cls._start()

    _swept = False

    @classmethod
    def remove_leftovers(cls) -> None:
        """Once a process: remove the guests named PREFIX* that a test run
        killed before its clean-up left defined on the system daemon (a
        persistent definition outlives the daemon and the test)."""
        if cls._swept:
            return
        cls._swept = True
        listed = subprocess.run(
            ['virsh', '-c', SYSTEM_URI, 'list', '--all', '--name'],
            capture_output=True, text=True, timeout=60)
        for name in listed.stdout.split():
            if name.startswith(PREFIX):
                for verb in ('destroy', 'undefine'):
                    subprocess.run(['virsh', '-c', SYSTEM_URI, verb, name],
                                   capture_output=True, timeout=60)

    @classmethod
    def _start(cls, log=None) -> subprocess.Popen:
        proc = subprocess.Popen(
            ['tini', '-s', '--', 'libvirtd'], stdout=log or cls._log,
            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while not cls.answers(2):
            if proc.poll() is not None or time.monotonic() > deadline:
                cls._give_up(proc)
            time.sleep(0.2)
        return proc

    @classmethod
    def _give_up(cls, proc: subprocess.Popen) -> None:
        """Stop ``proc`` (never leave a daemon behind) and fail with what
        the daemon said, since its log goes when this process exits."""
        exited = proc.poll()
        _terminate(proc)
        said = ''
        if cls._log is not None:
            cls._log.flush()
            with open(cls._log.name) as f:
                said = ''.join(f.readlines()[-5:])
        raise AssertionError(
            'libvirtd did not start' +
            (f' (exited with {exited})' if exited is not None else
             ' within 60s') +
            f'; last check: {cls.last_error}\n{said}')

    @classmethod
    def restart(cls) -> None:
        """Stop libvirtd (guests keep running) and start it again. One
        this process started is stopped at exit; one that ran before it
        is replaced by one that keeps running, as the machine had it."""
        if cls._ours is not None:
            cls._ours.terminate()
            cls._ours.wait(30)
            cls._ours = cls._start()
            return
        for pid in _pids('libvirtd'):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _pids('libvirtd') and time.monotonic() < deadline:
            time.sleep(0.1)
        cls._start(log=subprocess.DEVNULL)

    @classmethod
    def stop(cls) -> None:
        """Stop what this process started; leave the rest."""
        for proc in (cls._ours, cls._virtlogd):
            if proc is not None:
                _terminate(proc)
        cls._ours = cls._virtlogd = None
        if cls._log is not None:
            cls._log.close()
            os.unlink(cls._log.name)
            cls._log = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class OperatorTestCase(test.TestCase):
    """Runs the commands as processes on ``uri`` ('system' or 'embedded')."""

    uri = 'system'

    def setUp(self):
        super().setUp()
        reason = qemu_base.host_cannot_run_qemu()
        if reason:
            self.skipTest(f'Cannot run QEMU on this host: {reason}.')
        self.useFixture(fixtures.Timeout(300, gentle=True))
        # Short, and readable by the system daemon's QEMU user.
        self.work = tempfile.mkdtemp(prefix='nlv-op-', dir='/tmp')
        self.addCleanup(shutil.rmtree, self.work, ignore_errors=True)
        os.chmod(self.work, 0o755)
        self.images = self._images()
        if self.uri == 'system':
            SystemLibvirtd.ensure()
            SystemLibvirtd.remove_leftovers()
            self.connection_uri = SYSTEM_URI
        else:
            self.connection_uri = ''
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
        self.virsh_uri = self.connection_uri or libvirt_host.embed_uri(
            f'{self.work}/state/libvirt/qemu-embed')

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

    def _destroy(self, name: str) -> None:
        result = self.nova_libvirt('destroy', name, check=False)
        if result.returncode and 'No guest named' not in result.stderr:
            self.fail(f'destroy {name}: {result.stderr}')
        self.assertEqual([], qemu_base.qemu_processes(name),
                         f'QEMU still runs guest {name} after destroy')

    def memstats(self, *names) -> dict:
        """{name: row} from a fresh ``nova-libvirt memstats`` process."""
        out = self.nova_libvirt('memstats', '--format', 'json',
                                *names).stdout
        return {row['name']: row for row in json.loads(out)}

    def freeze(self, name: str) -> int:
        """SIGSTOP the guest's QEMU; the clean-up always thaws it."""
        pids = qemu_base.qemu_processes(name)
        self.assertEqual(1, len(pids), f'QEMU processes of {name}')
        self.addCleanup(qemu_base.RealQemuTestCase.thaw, pids[0])
        os.kill(pids[0], signal.SIGSTOP)
        return pids[0]
