"""Tests for stats_period.decide: every kind of guest x wanted period."""

import testscenarios

from nova import test
from nova.virt.libvirt import config as vconfig
from nova.virt.libvirt import stats_period

load_tests = testscenarios.load_tests_apply_scenarios


def _virtio(period):
    return vconfig.LibvirtConfigMemoryBalloon(model='virtio', period=period)


NONE = vconfig.LibvirtConfigMemoryBalloon(model='none')


def _facts(active=True, persistent=True, live=None, config=None,
           domain_type='qemu'):
    return stats_period.GuestFacts('g', domain_type, active, persistent,
                                   live, config)


RUNNING = dict(active=True, persistent=True)
TRANSIENT = dict(active=True, persistent=False)
SHUT_OFF = dict(active=False, persistent=True)


class DecideTest(test.TestCase):

    scenarios = [
        # running, persistent
        ('running_differs', dict(
            facts=_facts(**RUNNING, live=_virtio(30), config=_virtio(30)),
            period=2, action='change', flags=(True, True),
            words='period 30s -> 2s, live and in the persistent definition')),
        ('running_equal', dict(
            facts=_facts(**RUNNING, live=_virtio(2), config=_virtio(2)),
            period=2, action='keep', flags=(False, False),
            words='period already 2s; unchanged')),
        ('running_live_only_differs', dict(
            facts=_facts(**RUNNING, live=_virtio(30), config=_virtio(2)),
            period=2, action='change', flags=(True, False),
            words='live 30s, config 2s -> 2s, live (the persistent')),
        ('running_config_only_differs', dict(
            facts=_facts(**RUNNING, live=_virtio(2), config=_virtio(30)),
            period=2, action='change', flags=(False, True),
            words='in the persistent definition (live has it already)')),
        ('running_to_zero', dict(
            facts=_facts(**RUNNING, live=_virtio(10), config=_virtio(10)),
            period=0, action='change', flags=(True, True),
            words='-> 0 (reports stop; the balloon stays and its last '
                  'figures go stale)')),
        ('running_no_period_to_zero', dict(
            facts=_facts(**RUNNING, live=_virtio(None),
                         config=_virtio(None)),
            period=0, action='keep', flags=(False, False),
            words='no statistics period already')),
        ('running_no_period_set', dict(
            facts=_facts(**RUNNING, live=_virtio(None),
                         config=_virtio(None)),
            period=5, action='change', flags=(True, True),
            words='period none -> 5s')),
        ('running_none', dict(
            facts=_facts(**RUNNING, live=NONE, config=NONE),
            period=2, action='cannot', flags=(False, False),
            words='balloon disabled (model none), and libvirt cannot add '
                  'one to an existing guest; recreate the guest')),
        ('running_none_to_zero', dict(
            facts=_facts(**RUNNING, live=NONE, config=NONE),
            period=0, action='keep', flags=(False, False),
            words='statistics already disabled')),
        ('running_no_balloon', dict(
            facts=_facts(**RUNNING), period=2, action='cannot',
            flags=(False, False), words='has no memory balloon')),
        # transient
        ('transient_differs', dict(
            facts=_facts(**TRANSIENT, live=_virtio(30)), period=2,
            action='change', flags=(True, False),
            words='live only (transient guest: no persistent definition)')),
        ('transient_equal', dict(
            facts=_facts(**TRANSIENT, live=_virtio(2)), period=2,
            action='keep', flags=(False, False), words='already 2s')),
        ('transient_none', dict(
            facts=_facts(**TRANSIENT, live=NONE), period=2,
            action='cannot', flags=(False, False), words='hard reboot')),
        # shut off
        ('shut_off_differs', dict(
            facts=_facts(**SHUT_OFF, config=_virtio(30)), period=2,
            action='change', flags=(False, True),
            words='in the persistent definition only (guest is shut off; '
                  'it applies at the next start)')),
        ('shut_off_equal', dict(
            facts=_facts(**SHUT_OFF, config=_virtio(2)), period=2,
            action='keep', flags=(False, False), words='already 2s')),
        ('shut_off_none', dict(
            facts=_facts(**SHUT_OFF, config=NONE), period=2,
            action='cannot', flags=(False, False), words='cannot change')),
        # lxc
        ('lxc', dict(
            facts=_facts(**RUNNING, domain_type='lxc'), period=2,
            action='cannot', flags=(False, False),
            words='lxc guests have no memory balloon')),
        ('lxc_to_zero', dict(
            facts=_facts(**RUNNING, domain_type='lxc'), period=0,
            action='cannot', flags=(False, False), words='lxc')),
    ]

    def test_decide(self):
        change = stats_period.decide(self.facts, self.period)
        self.assertEqual(self.action, change.action, change.message)
        self.assertEqual(self.flags, (change.live, change.config))
        self.assertIn(self.words, change.message)
        self.assertTrue(change.message.startswith('g: '), change.message)
        self.assertEqual(1, len(change.message.splitlines()))
