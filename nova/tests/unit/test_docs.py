"""The documentation builds without warnings, the release notes lint, and
the code passes the style checks: the suite catches what tox envs would.
"""

import os
import re
import subprocess
import sys

import fixtures

from nova import config
from nova import test
import nova.conf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def _run(*argv):
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


class DocsTest(test.TestCase):

    def test_docs_build_with_warnings_as_errors(self):
        out = self.useFixture(fixtures.TempDir()).path
        result = _run(sys.executable, '-m', 'sphinx', '-W', '--keep-going',
                      '-q', '-b', 'html', 'doc/source', out)
        self.assertEqual(0, result.returncode, result.stderr)
        with open(os.path.join(out, 'configuration', 'config.html')) as f:
            page = f.read()
        self.assertIn('mem_stats_period_seconds', page)
        self.assertIn('2147483647', page)

    def test_release_notes_lint(self):
        reno = os.path.join(os.path.dirname(sys.executable), 'reno')
        result = _run(reno, 'lint')
        self.assertEqual(0, result.returncode,
                         result.stdout + result.stderr)
        notes = os.listdir(os.path.join(ROOT, 'releasenotes', 'notes'))
        self.assertTrue(any('memballoon' in n for n in notes), notes)

    def test_style(self):
        result = _run(sys.executable, '-m', 'ruff', 'check', 'nova')
        self.assertEqual(0, result.returncode, result.stdout)


class ReloadDocTest(test.TestCase):
    """exporter.rst's "What a reload changes" names every option, each
    in the list its ``mutable`` flag puts it in.
    """

    def _listed(self) -> dict[str, set]:
        path = os.path.join(ROOT, 'doc', 'source', 'admin', 'exporter.rst')
        with open(path) as f:
            text = f.read()
        section = text.split('What a reload changes', 1)[1].split(
            '\n\n', 2)[1]
        items = {}
        for item in re.split(r'\n- ', '\n' + section)[1:]:
            head, _, rest = item.partition(':')
            head = 'restart' if head.startswith('After a restart') else head
            items[head] = set(re.findall(r'``\[(\w+)\]\s+(\w+)``', rest))
        return items

    def test_reload_paragraph_matches_mutable_flags(self):
        listed = self._listed()
        mutable, restart = set(), set()
        for group, opt, _ in config.nova_options(nova.conf.CONF):
            (mutable if opt.mutable else restart).add((group, opt.dest))
        self.assertEqual(mutable, listed['At once'])
        self.assertEqual(restart, listed['restart'])


class ReadmeFilesTest(test.TestCase):
    """README names every file the demo keeps outside the clone, where the
    code puts it (issue 40: the embedded root and libvirt's log were not
    named).
    """

    def test_the_demo_s_files_outside_the_clone(self):
        from nova import testimage
        from nova.virt.libvirt import api as libvirt_pkg
        with open(os.path.join(ROOT, 'README.rst')) as f:
            readme = ' '.join(f.read().split())
        state_path = nova.conf.CONF.state_path
        # the image cache under the home directory, as README writes it
        cache = '.cache/nova-libvirt/test-image'
        self.assertTrue(testimage.DEFAULT_CACHE.endswith('/' + cache))
        for path in (os.path.join(state_path, 'libvirt', 'qemu-embed'),
                     os.path.join(libvirt_pkg.LOG_DIR, 'nova-libvirt.log'),
                     '~/' + cache):
            self.assertIn(f'``{path}``', readme)
