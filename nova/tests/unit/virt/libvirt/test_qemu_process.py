"""A guest's QEMU start, from its pid file and /proc."""

import os
import subprocess
import sys
import time

import fixtures

from nova import test
from nova.virt.libvirt import qemu_process


class StartedAtTest(test.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path

    def _process(self, argv):
        """``argv`` started, once its /proc entry shows it (between fork
        and exec it shows this process's command line).
        """
        proc = subprocess.Popen(argv)
        self.addCleanup(lambda: (proc.kill(), proc.wait()))
        deadline = time.monotonic() + 30
        while True:
            with open(f'/proc/{proc.pid}/cmdline', 'rb') as f:
                if f.read().split(b'\0')[:len(argv)] == [
                        a.encode() for a in argv]:
                    return proc
            self.assertLess(time.monotonic(), deadline,
                            f'{argv[0]} not started in 30s')
            time.sleep(0.01)

    def test_the_process_named_by_the_pid_file(self):
        before = time.time()
        # (a shell would exec sleep: its argv would lose guest=)
        proc = self._process([sys.executable, '-c',
                              'import time; time.sleep(60)', 'guest=web1'])
        with open(os.path.join(self.dir, 'web1.pid'), 'w') as f:
            f.write(f'{proc.pid}\n')
        started = qemu_process.started_at(self.dir, 'web1')
        # /proc counts in clock ticks since boot: a tick's slack
        self.assertGreaterEqual(started, before - 1)
        self.assertLessEqual(started, time.time())

    def test_none_where_it_cannot_tell(self):
        # no pid file; a pid that is not the guest's; no directory
        self.assertIsNone(qemu_process.started_at(self.dir, 'web1'))
        other = self._process(['sleep', '60'])
        with open(os.path.join(self.dir, 'web1.pid'), 'w') as f:
            f.write(str(other.pid))
        self.assertIsNone(qemu_process.started_at(self.dir, 'web1'))
        self.assertIsNone(qemu_process.started_at(None, 'web1'))

    def test_where_each_driver_keeps_its_pid_files(self):
        self.assertEqual('/r/run/qemu', qemu_process.state_dir(
            'qemu:///embed?root=/r', '/r'))
        self.assertEqual('/run/libvirt/qemu', qemu_process.state_dir(
            'qemu:///system', None))
        self.assertIsNone(qemu_process.state_dir('qemu+ssh://h/system',
                                                 None))
