"""The suite's own libvirtd leaves nothing behind even when the test
process is killed: a worker that gets SIGKILL (a CI timeout, an operator's
``kill``) runs no clean-up of its own, so a guard process of the fixture's
stops its libvirtd, virtlogd and their guests' QEMUs and removes their
directory.
"""

import os
import subprocess
import sys

from nova import testimage
from nova.tests.fixtures import private_libvirtd
from nova.tests.functional.operator import base

CHILD = """\
import sys
from nova.tests.fixtures.private_libvirtd import PrivateLibvirtd
PrivateLibvirtd.ensure()
print(PrivateLibvirtd.root, PrivateLibvirtd.uri, flush=True)
sys.stdin.read()
"""


class KilledWorkerTest(base.OperatorTestCase):

    def start_child(self) -> tuple:
        """(a process with a private libvirtd of its own, the daemon's
        directory, its URI); whatever the test does, nothing of that
        daemon stays.
        """
        child = subprocess.Popen(
            [sys.executable, '-c', CHILD], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True,
            env=dict(os.environ, TMPDIR=self.work))
        self.addCleanup(lambda: child.poll() is None and child.kill())
        root, uri = child.stdout.readline().split()
        self.addCleanup(private_libvirtd.sweep, root)
        return child, root, uri

    def test_a_killed_process_leaves_no_daemon_or_guest(self):
        child, root, uri = self.start_child()
        name = base.PREFIX + 'orphan'
        kernel, initrd = self.images['balloon']
        conf = self.write_conf('child.conf', f'[libvirt]\n'
                               f'connection_uri = {uri}\n')
        self.nova_libvirt('boot', name, '--kernel', kernel, '--initrd',
                          initrd, '--cmdline', testimage.CMDLINE,
                          conf_files=[conf])
        with open(f'{root}/run/qemu/{name}.pid') as f:
            qemu = int(f.read().strip())
        self.assertTrue(os.path.exists(f'/proc/{qemu}'))
        # 2 tinis, their daemons
        self.assertGreaterEqual(len(private_libvirtd.naming(root)), 4)

        child.kill()
        child.wait()
        self.wait_for('the killed process\'s daemons, QEMU and directory '
                      'gone', lambda: not (
                          private_libvirtd.naming(root) or
                          os.path.exists(f'/proc/{qemu}') or
                          os.path.exists(root)), 30)
        self.assertEqual(set(), private_libvirtd.naming(root))
        self.assertFalse(os.path.exists(f'/proc/{qemu}'),
                         f'QEMU {qemu} outlived its killed test process')
        self.assertFalse(os.path.exists(root))

    def test_the_guard_ends_with_a_clean_stop(self):
        # the usual way: stop() at exit, and the guard goes with it
        child, root, _ = self.start_child()
        child.stdin.close()  # the child returns and exits
        self.assertEqual(0, child.wait(60))
        self.assertEqual(set(), private_libvirtd.naming(root))
        self.assertFalse(os.path.exists(root))
