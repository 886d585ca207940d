"""How advice names the nova-libvirt command: as the operator can run it
(issue 40: hints from a clone said "nova-libvirt ...", which was not on
PATH: command not found).
"""

import os
import stat
import subprocess
import sys

import fixtures

from nova import hints
from nova import test

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))


class RunnableNameTest(test.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.bin = os.path.join(self.tmp, 'bin')
        os.mkdir(self.bin)
        for name in ('nova-libvirt', 'nova-libvirt-exporter'):
            path = os.path.join(self.bin, name)
            with open(path, 'w') as f:
                f.write('#!/bin/sh\n')
            os.chmod(path, stat.S_IRWXU)
        self.script = os.path.join(self.bin, 'nova-libvirt-exporter')

    def test_the_wrapper_the_operator_typed(self):
        self.assertEqual(['tools/nova-libvirt'], hints.runnable_name(
            self.script, {hints.ENVIRON: 'tools/nova-libvirt',
                          'PATH': self.bin}))

    def test_by_name_where_path_finds_this_one(self):
        self.assertEqual(['nova-libvirt'], hints.runnable_name(
            self.script, {'PATH': f'/nonexistent:{self.bin}'}))

    def test_by_path_where_path_does_not(self):
        self.assertEqual([os.path.join(self.bin, 'nova-libvirt')],
                         hints.runnable_name(self.script,
                                             {'PATH': '/usr/bin'}))

    def test_no_script_beside_it(self):
        self.assertEqual(['nova-libvirt'], hints.runnable_name(
            os.path.join(self.tmp, 'python3'), {'PATH': '/usr/bin'}))

    def test_commands_are_quoted_with_the_run_s_files(self):
        hints.set_command(['tools/nova-libvirt'])
        hints.set_config(['/etc/my nova.conf'], ['/etc/nova/conf.d'])
        self.assertEqual("tools/nova-libvirt --config-file '/etc/my "
                         "nova.conf' --config-dir /etc/nova/conf.d "
                         "destroy web1", hints.command('destroy', 'web1'))


class AsRunTest(test.TestCase):
    """The console script as a process, on libvirt's test driver: a missing
    guest's advice names the command as it was run.
    """

    def _memstats(self, env):
        tmp = self.useFixture(fixtures.TempDir()).path
        conf = os.path.join(tmp, 'nova.conf')
        with open(conf, 'w') as f:
            f.write('[libvirt]\nconnection_uri = test:///default\n')
        script = os.path.join(os.path.dirname(sys.executable),
                              'nova-libvirt')
        result = subprocess.run(
            [script, '--config-file', conf, 'memstats', 'nosuch'],
            capture_output=True, text=True, timeout=60,
            env={**{k: v for k, v in os.environ.items()
                    if k != hints.ENVIRON}, 'PATH': '/usr/bin:/bin', **env})
        self.assertEqual(1, result.returncode, result.stderr)
        return conf, script, result.stderr

    def test_by_its_path_when_not_on_path(self):
        conf, script, err = self._memstats({})
        self.assertIn(f'"{script} --config-file {conf} memstats" lists the '
                      'guests there', err)

    def test_as_the_wrapper_when_run_through_it(self):
        conf, _, err = self._memstats(
            {hints.ENVIRON: 'tools/nova-libvirt'})
        self.assertIn(f'"tools/nova-libvirt --config-file {conf} memstats"',
                      err)
        # ... which runs from the clone
        self.assertTrue(os.access(os.path.join(ROOT, 'tools',
                                               'nova-libvirt'), os.X_OK))
