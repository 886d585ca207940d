"""nova-libvirt run in-process, as the command-line tests run it."""

import io
import os

import fixtures

from nova import test
from nova.cmd import libvirt as cmd


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
