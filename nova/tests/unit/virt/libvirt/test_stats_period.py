"""Tests for stats_period: the period a guest asks for (guest_period),
and decide: every kind of guest x wanted period.
"""

import testscenarios

from nova import exception
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


SPEC = 'hw:mem_stats_period_seconds'
PROP = 'hw_mem_stats_period_seconds'


class GuestPeriodTest(test.TestCase):
    """The period a guest asks for: flavor, else image, else the option."""

    scenarios = [
        # (host option, extra specs, image properties) -> (seconds, source)
        ('nothing_asked', dict(args=(10, {}, {}), want=(10, 'host'))),
        ('nothing_given', dict(args=(10, None, None), want=(10, 'host'))),
        ('option_disabled', dict(args=(-1, {}, {}), want=(0, 'host'))),
        ('flavor', dict(args=(10, {SPEC: '2'}, {}), want=(2, 'flavor'))),
        ('flavor_disables', dict(args=(10, {SPEC: '0'}, {}),
                                 want=(0, 'flavor'))),
        ('flavor_negative', dict(args=(10, {SPEC: '-5'}, {}),
                                 want=(0, 'flavor'))),
        ('flavor_over_disabled_option', dict(args=(0, {SPEC: '3'}, {}),
                                             want=(3, 'flavor'))),
        ('image', dict(args=(10, {}, {PROP: '7'}), want=(7, 'image'))),
        ('image_as_python', dict(args=(10, {}, {PROP: 7}),
                                 want=(7, 'image'))),
        ('image_disables', dict(args=(10, None, {PROP: '0'}),
                                want=(0, 'image'))),
        ('both_agree', dict(args=(10, {SPEC: '4'}, {PROP: '4'}),
                            want=(4, 'flavor'))),
        ('both_disable_differently', dict(
            args=(10, {SPEC: '0'}, {PROP: '-1'}), want=(0, 'flavor'))),
        ('others_ignored', dict(
            args=(10, {'hw:cpu_policy': 'dedicated'}, {'os_type': 'linux'}),
            want=(10, 'host'))),
        ('blanks', dict(args=(10, {SPEC: ' 8 '}, {}), want=(8, 'flavor'))),
    ]

    def test_guest_period(self):
        got = stats_period.guest_period(*self.args)
        self.assertEqual(self.want, (got.seconds, got.source))


class GuestPeriodRefusedTest(test.TestCase):

    def test_conflict_names_both(self):
        e = self.assertRaises(exception.FlavorImageConflict,
                              stats_period.guest_period, 10, {SPEC: '2'},
                              {PROP: '5'})
        self.assertEqual(
            'The flavor and the image disagree on the memory statistics '
            'period: flavor extra spec hw:mem_stats_period_seconds=2, image '
            'property hw_mem_stats_period_seconds=5; unset one of them or '
            'make them equal.', str(e))
        self.assertRaises(exception.FlavorImageConflict,
                          stats_period.guest_period, 10, {SPEC: '0'},
                          {PROP: '5'})

    def test_bad_values_name_key_value_and_range(self):
        for specs, props, words in (
                ({SPEC: 'two'}, {}, "Flavor extra spec "
                 "hw:mem_stats_period_seconds='two' is not valid: expected "
                 'an integer of at most 2147483647 (0 or below disables '
                 'statistics).'),
                ({SPEC: '1.5'}, {}, "'1.5' is not valid"),
                ({SPEC: '2147483648'}, {}, 'at most 2147483647'),
                ({}, {PROP: 'yes'}, "Image property "
                 "hw_mem_stats_period_seconds='yes' is not valid"),
                ({}, {PROP: True}, 'is not valid')):
            e = self.assertRaises(exception.ValidationError,
                                  stats_period.guest_period, 10, specs,
                                  props)
            self.assertIn(words, str(e))
            self.assertNotIn('\n', str(e))

    def test_from_metadata(self):
        flavor = vconfig.LibvirtConfigGuestMetaNovaFlavor(
            extra_specs={SPEC: '2'})
        image = vconfig.LibvirtConfigGuestMetaImage(properties={PROP: '2'})
        meta = vconfig.LibvirtConfigGuestMetaNovaInstance(flavor=flavor,
                                                          image=image)
        self.assertEqual(2, stats_period.wanted_period(10, meta))
        self.assertEqual(10, stats_period.wanted_period(10, None))
        self.assertEqual(10, stats_period.wanted_period(
            10, vconfig.LibvirtConfigGuestMetaNovaInstance()))
        image.properties = {PROP: '3'}
        self.assertIsNone(stats_period.wanted_period(10, meta))  # conflict
        self.assertEqual('flavor', stats_period.metadata_period(
            10, vconfig.LibvirtConfigGuestMetaNovaInstance(
                flavor=flavor)).source)


class DecideAskedTest(test.TestCase):

    def test_the_line_says_who_asked(self):
        wanted = stats_period.Wanted(2, 'flavor')
        change = stats_period.decide(_facts(live=_virtio(30),
                                            config=_virtio(30)),
                                     2, wanted.asked)
        self.assertEqual(
            'g: period 30s -> 2s, live and in the persistent definition (as '
            'its flavor extra spec hw:mem_stats_period_seconds asks).',
            change.message)
        self.assertIsNone(stats_period.Wanted(2, 'host').asked)
        self.assertIsNone(stats_period.Wanted(2, 'given').asked)


class DisabledRemedyTest(test.TestCase):
    """A guest without statistics is told the fix that applies to what
    decided its period (issue 40: a flavor's 0 was told to raise the
    option).
    """

    def test_each_source_its_fix(self):
        remedy = stats_period.disabled_remedy
        wanted_ = stats_period.Wanted
        self.assertIn('resize it to a flavor whose '
                      'hw:mem_stats_period_seconds is above 0',
                      remedy(wanted_(0, 'flavor')))
        self.assertIn('its flavor extra spec hw:mem_stats_period_seconds '
                      'is 0', remedy(wanted_(0, 'flavor')))
        self.assertIn('rebuild it from an image whose '
                      'hw_mem_stats_period_seconds is above 0',
                      remedy(wanted_(0, 'image')))
        self.assertEqual('set [libvirt] mem_stats_period_seconds above 0 '
                         'and recreate it (in Nova: a hard reboot)',
                         remedy(wanted_(0, 'host')))
        self.assertIn('it asks for a 5s period (its image property '
                      'hw_mem_stats_period_seconds) but was created '
                      'without one: recreate it', remedy(wanted_(5, 'image')))
        self.assertEqual(stats_period.RECREATE, remedy(None))
        for wanted in (wanted_(0, 'flavor'), wanted_(0, 'image')):
            self.assertNotIn('[libvirt]', remedy(wanted))

    def test_set_period_says_it(self):
        facts = stats_period.GuestFacts(
            'g', 'kvm', True, True,
            live_balloon=vconfig.LibvirtConfigMemoryBalloon(model='none'),
            config_balloon=vconfig.LibvirtConfigMemoryBalloon(model='none'))
        change = stats_period.decide(
            facts, 5, remedy=stats_period.disabled_remedy(
                stats_period.Wanted(0, 'flavor')))
        self.assertEqual(stats_period.CANNOT, change.action)
        self.assertIn('resize it to a flavor', change.message)
        self.assertNotIn('[libvirt] mem_stats_period_seconds',
                         change.message)
