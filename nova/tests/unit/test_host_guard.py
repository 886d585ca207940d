"""tools/host-guard: the suite fails only on what it could have done to
the host's libvirtd; what others did meanwhile is information.
"""

import importlib.machinery
import importlib.util
import os

from nova import test

PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))), 'tools', 'host-guard')


def _load():
    loader = importlib.machinery.SourceFileLoader('host_guard', PATH)
    spec = importlib.util.spec_from_loader('host_guard', loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _xml(period=None, metadata=''):
    stats = '' if period is None else f"<stats period='{period}'/>"
    return (f"<domain><metadata>{metadata}</metadata><devices><memballoon "
            f"model='virtio'>{stats}</memballoon></devices></domain>")


class HostGuardTest(test.TestCase):

    def setUp(self):
        super().setUp()
        self.guard = _load()
        self.before = {'pids': ['100'], 'guests': {
            'u1': {'name': 'web1', 'state': 'running', 'xml': _xml(10)},
            'u2': {'name': 'db1', 'state': 'running', 'xml': _xml(10)}}}

    def after(self, **changes):
        guests = {u: dict(g) for u, g in self.before['guests'].items()}
        for uuid, fields in changes.items():
            if fields is None:
                guests.pop(uuid)
            else:
                guests.setdefault(uuid, {}).update(fields)
        return {'pids': ['100'], 'guests': guests}

    def test_others_changes_are_information(self):
        fails, info = self.guard.compare(self.before, self.after(
            u2=None,  # someone removed a guest
            u3={'name': 'new1', 'state': 'running', 'xml': _xml(5)},
            u1={'state': 'paused', 'xml': _xml(10, '<x/>')}))
        self.assertEqual([], fails)
        self.assertEqual(4, len(info), info)

    def test_what_only_the_suite_does_fails(self):
        for changes, words in (
                ({'u1': {'xml': _xml(2)}}, 'statistics period 10 -> 2'),
                ({'u1': {'xml': _xml(10, '<nova-libvirt:period/>')}},
                 "nova-libvirt's metadata added"),
                ({'u9': {'name': 'ft-op-guest', 'state': 'running',
                         'xml': _xml(2)}}, 'ft-op-guest'),
                ({'u9': {'name': 'memstats-demo-on', 'state': 'running',
                         'xml': _xml(2)}}, 'memstats-demo-on')):
            fails, _ = self.guard.compare(self.before, self.after(**changes))
            self.assertEqual(1, len(fails), changes)
            self.assertIn(words, fails[0])
        restarted = self.after()
        restarted['pids'] = ['200']
        fails, _ = self.guard.compare(self.before, restarted)
        self.assertIn('not the same process', fails[0])

    def test_no_daemon_no_check(self):
        self.assertEqual(([], []), self.guard.compare({}, {}))
