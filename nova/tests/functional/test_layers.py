"""The house reads in one direction, and importing does nothing.

Each module named in FORBIDDEN, imported alone in a fresh interpreter,
pulls in none of what STYLE's layout forbids it. Every module of nova/
(but the tests), nova.cmd included, imported under watch, starts no
process, makes no directory and changes no environment variable: the
commands do such things when they run. libvirt-python is imported by
nova.virt.libvirt.api alone, when first used: importing every module of
nova/ loads no libvirt. And no
module logs a warning or an error inside an ``except`` block: oslo.log
would add the exception's class to the line
(``...: nova.exporter.service.ExporterFailed: ...``).
"""

import ast
import json
import os
import pkgutil
import subprocess
import sys

import fixtures

import nova
from nova import test

# module: modules it must not bring in
FORBIDDEN = {
    'nova.virt.libvirt.config': ('libvirt', 'nova.conf'),
    'nova.virt.libvirt.bounded': ('libvirt', 'nova.conf'),
    'nova.virt.libvirt.stats_poll': ('nova.conf',
                                     'nova.virt.libvirt.host'),
    'nova.virt.libvirt.connection': ('nova.conf',
                                     'nova.virt.libvirt.host'),
    'nova.virt.libvirt.stuck': ('nova.conf', 'nova.virt.libvirt.host'),
    'nova.virt.libvirt.records': ('nova.conf', 'nova.virt.libvirt.host'),
    'nova.virt.libvirt.host': ('nova.conf', 'nova.virt.libvirt.driver'),
    'nova.virt.libvirt.memstats': ('nova.conf',),
    'nova.virt.libvirt.guest_state': ('libvirt', 'nova.conf'),
    'nova.virt.libvirt.stats_period': ('libvirt', 'nova.conf'),
    'nova.exporter.service': ('nova.conf', 'nova.virt.libvirt.driver'),
    'nova.exporter.app': ('nova.conf', 'nova.virt.libvirt.driver',
                          'libvirt'),
    'nova.exporter.web.server': ('nova.conf', 'nova.virt.libvirt.driver',
                                 'libvirt', 'nova.exporter.app'),
    'nova.exporter.web.handler': ('nova.conf', 'libvirt',
                                  'nova.exporter.app'),
    # sans-IO: bytes in, bytes and events out; no event loop (ssl, for
    # its memory buffers, brings the socket module in)
    'nova.exporter.web.protocol': ('nova.conf', 'libvirt', 'asyncio',
                                   'nova.exporter.web.handler',
                                   'nova.exporter.app'),
    'nova.exporter.web.table': ('asyncio', 'socket', 'ssl', 'h11'),
    'nova.exporter.web.messages': ('asyncio', 'socket', 'ssl', 'h11'),
    'nova.exporter.web.config': ('nova.conf', 'libvirt', 'ssl'),
    'nova.exporter.web.yamlread': ('nova.conf', 'libvirt', 'ssl'),
    'nova.exporter.metrics': ('nova.conf', 'nova.virt.libvirt.driver',
                              'libvirt'),
    'nova.readfile': ('nova.conf', 'libvirt'),
    'nova.virt.libvirt.api': ('nova.conf', 'libvirt'),
}

# Logging calls oslo.log adds an active exception's class to.
LOUD = ('warning', 'error', 'critical', 'exception', 'fatal')

PROBE = """
import json, os, sys
before = set(os.environ)
__import__(sys.argv[1])
print(json.dumps({'modules': sorted(sys.modules),
                  'env': sorted(set(os.environ) - before)}))
"""

# Imports each module named on the command line, with every way of making
# a directory or starting a process recorded; prints what was done.
WATCH = r"""
import json, os, subprocess, sys
done = []
def watch(owner, name):
    real = getattr(owner, name)
    def recorded(*args, **kwargs):
        done.append(f'{name}{args[:2]!r}'[:200])
        return real(*args, **kwargs)
    setattr(owner, name, recorded)
for name in ('mkdir', 'makedirs', 'system', 'fork', 'posix_spawn',
             'posix_spawnp', 'execv', 'execve'):
    if hasattr(os, name):
        watch(os, name)
watch(subprocess.Popen, '__init__')
before = dict(os.environ)
result = {}
for module in sys.argv[1:]:
    __import__(module)
    changed = sorted(k for k in set(before) | set(os.environ)
                     if before.get(k) != os.environ.get(k))
    if done or changed:
        result[module] = {'done': list(done), 'env': changed}
        done.clear()
        before = dict(os.environ)
print(json.dumps(result))
"""


def house_modules() -> list[str]:
    """Every module of nova/ but the tests (nova.tests and nova.test, the
    test case base), by name.
    """
    names = ['nova']
    for info in pkgutil.walk_packages(nova.__path__, 'nova.'):
        if info.name.split('.')[1] not in ('tests', 'test'):
            names.append(info.name)
    return sorted(names)


class LayersTest(test.TestCase):

    def test_each_module_imports_only_what_it_may(self):
        for module, forbidden in FORBIDDEN.items():
            result = subprocess.run(
                [sys.executable, '-c', PROBE, module], capture_output=True,
                text=True, timeout=60)
            self.assertEqual(0, result.returncode, result.stderr)
            found = json.loads(result.stdout)
            for name in forbidden:
                self.assertNotIn(name, found['modules'],
                                 f'{module} imports {name}')

    def test_libvirt_has_one_door(self):
        # importing every module loads no libvirt; and no module but api
        # imports it, by statement or by name
        modules = house_modules()
        result = subprocess.run(
            [sys.executable, '-c',
             'import sys\nfor m in sys.argv[1:]: __import__(m)\n'
             'print("libvirt" in sys.modules)'] + modules,
            capture_output=True, text=True, timeout=120)
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertEqual('False', result.stdout.strip())
        root = os.path.dirname(nova.__file__)
        importers = []
        for directory, _, files in os.walk(root):
            if os.sep + 'tests' in directory[len(root):] + os.sep:
                continue
            for name in files:
                if not name.endswith('.py'):
                    continue
                path = os.path.join(directory, name)
                with open(path) as f:
                    tree = ast.parse(f.read())
                for node in ast.walk(tree):
                    named = (
                        [a.name for a in node.names]
                        if isinstance(node, ast.Import) else
                        [node.module] if isinstance(node, ast.ImportFrom)
                        else [ast.unparse(node.args[0]).strip('\'"')]
                        if isinstance(node, ast.Call) and node.args and
                        ast.unparse(node.func).endswith(
                            ('import_module', '__import__')) else [])
                    if 'libvirt' in named:
                        importers.append(os.path.relpath(path, root))
        self.assertEqual(['virt/libvirt/api.py'], sorted(set(importers)))

    def test_no_warning_is_logged_inside_an_except(self):
        root = os.path.dirname(nova.__file__)
        found = []
        for directory, _, files in os.walk(root):
            if os.sep + 'tests' in directory[len(root):] + os.sep:
                continue
            for name in files:
                if not name.endswith('.py'):
                    continue
                path = os.path.join(directory, name)
                with open(path) as f:
                    tree = ast.parse(f.read())
                for handler in ast.walk(tree):
                    if not isinstance(handler, ast.ExceptHandler):
                        continue
                    for call in ast.walk(handler):
                        if isinstance(call, ast.Call) and isinstance(
                                call.func, ast.Attribute) and \
                                call.func.attr in LOUD:
                            found.append(f'{os.path.relpath(path, root)}:'
                                         f'{call.lineno}')
        self.assertEqual([], found)

    def test_every_module_imports_without_doing_anything(self):
        modules = house_modules()
        self.assertIn('nova.cmd.libvirt', modules)
        self.assertIn('nova.cmd.exporter', modules)
        self.assertIn('nova.exporter.web.server', modules)
        # the run's own libvirt log setting out of the way, so that a
        # module routing libvirt's log at import would show
        env = {k: v for k, v in os.environ.items()
               if k != 'LIBVIRT_LOG_OUTPUTS'}
        result = subprocess.run(
            [sys.executable, '-c', WATCH] + modules, capture_output=True,
            text=True, timeout=120, env=env,
            cwd=self.useFixture(fixtures.TempDir()).path)
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertEqual({}, json.loads(result.stdout.splitlines()[-1]))
