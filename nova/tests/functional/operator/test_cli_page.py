"""The examples of the CLI page run as written.

Every ``$ nova-libvirt ...`` line of doc/source/cli/nova-libvirt.rst runs
as a process, as an operator would type it, in a directory holding what
the examples name (``nova.conf``, ``vmlinuz``, ``initrd.gz``), beside a
guest ``web1`` booted first with period 30. The configuration they do not
name comes from the environment (oslo.config's ``OS_<GROUP>__<OPTION>``),
so every example reaches this test's own embedded driver and state, and
HOME is the test's directory. Each must exit 0, and where the page shows
output, the command prints lines of the same shape (set-period's first
line word for word).
"""

import os
import re
import shlex
import subprocess

from nova import testimage
from nova.tests.functional.operator import base
from nova.virt.libvirt import embed

PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                    *['..'] * 4, 'doc', 'source', 'cli', 'nova-libvirt.rst')


def examples(text: str) -> list[tuple[str, list[str]]]:
    """[(command line, the output lines the page shows)] of each ``$``
    line of a console block, continuation lines joined.
    """
    found = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line.startswith('$ '):
            continue
        command = line[2:]
        while command.endswith('\\'):
            command = command[:-1] + ' ' + lines[i].strip()
            i += 1
        output = []
        while i < len(lines) and lines[i].strip() and not lines[
                i].strip().startswith('$ '):
            output.append(lines[i].strip())
            i += 1
        found.append((command, output))
    return found


class CliPageTest(base.OperatorTestCase):

    uri = 'embedded'

    def run_as_written(self, command: str, env: dict
                       ) -> subprocess.CompletedProcess:
        argv = shlex.split(command)
        self.assertEqual('nova-libvirt', argv[0], command)
        return subprocess.run([os.path.join(base.BIN, argv[0])] + argv[1:],
                              cwd=self.work, env=env, capture_output=True,
                              text=True, timeout=120)

    def test_every_example_runs_as_written(self):
        with open(PAGE) as f:
            found = examples(f.read())
        self.assertGreaterEqual(len(found), 3, found)
        kernel, initrd = self.images['balloon']
        os.rename(kernel, os.path.join(self.work, 'vmlinuz'))
        os.rename(initrd, os.path.join(self.work, 'initrd.gz'))
        self.write_conf('nova.conf', '[libvirt]\nvirt_type = qemu\n')
        env = dict(os.environ, HOME=self.work,
                   OS_DEFAULT__STATE_PATH=f'{self.work}/state',
                   OS_DEFAULT__INSTANCES_PATH=f'{self.work}/instances',
                   OS_LIBVIRT__VIRT_TYPE='qemu',
                   # never the host's libvirtd, which the examples
                   # would use where one runs
                   OS_LIBVIRT__CONNECTION_URI=embed.embed_uri(
                       f'{self.work}/state/libvirt/qemu-embed'))
        boot = self.run_as_written(
            'nova-libvirt boot web1 --kernel vmlinuz --initrd initrd.gz '
            f'--cmdline {shlex.quote(testimage.CMDLINE)} --wait 90',
            dict(env, OS_LIBVIRT__MEM_STATS_PERIOD_SECONDS='30'))
        self.addCleanup(self.run_as_written, 'nova-libvirt destroy web1',
                        env)
        self.assertEqual(0, boot.returncode, boot.stderr)

        for command, shown in found:
            result = self.run_as_written(command, env)
            self.assertEqual(0, result.returncode,
                             f'{command}: {result.stderr}')
            printed = result.stdout.splitlines()
            if ' guest-xml ' in f' {command} ':
                self.assertTrue(result.stdout.startswith('<domain'),
                                result.stdout[:200])
            elif ' memstats' in command:
                # the same columns, and web1 among the rows
                self.assertEqual(shown[0].split(), printed[0].split())
                self.assertTrue(any(re.match(r'web1\s', line)
                                    for line in printed), printed)
            elif ' set-period ' in command:
                self.assertEqual(shown[0], printed[0])
                self.assertRegex(printed[-1], r'^set-period: \d+ changed, '
                                 r'\d+ unchanged, \d+ cannot change, '
                                 r'\d+ failed$')
            else:
                self.fail(f'{command}: an example this test does not know '
                          'how to check: add it here.')
