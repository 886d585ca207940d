"""Free page reporting per guest (nova.virt.libvirt.balloon_policy): each
row of its table, its refusals, and the balloon the driver writes.
"""

import ast
import os
import sys

import testscenarios

from nova import exception
from nova import test
from nova.virt.libvirt import balloon_policy
from nova.virt.libvirt import config as vconfig
from nova.virt.libvirt import driver

load_tests = testscenarios.load_tests_apply_scenarios

SPEC = 'hw:mem_free_page_reporting'
PROP = 'hw_mem_free_page_reporting'


class DecisionTest(test.TestCase):
    """(host option, flavor's extra specs, image's properties) -> (on,
    what decided it).
    """

    scenarios = [
        ('plain', dict(host=True, specs={}, props={}, want=(True, 'host'))),
        ('host_off', dict(host=False, specs={}, props={},
                          want=(False, 'host'))),
        ('flavor_off', dict(host=True, specs={SPEC: 'false'}, props={},
                            want=(False, 'flavor'))),
        ('flavor_on_host_off', dict(host=False, specs={SPEC: 'yes'},
                                    props={}, want=(True, 'flavor'))),
        ('image_off', dict(host=True, specs={}, props={PROP: 'false'},
                           want=(False, 'image'))),
        ('image_on_host_off', dict(host=False, specs={},
                                   props={PROP: True}, want=(True, 'image'))),
        ('same_both', dict(host=True, specs={SPEC: 'false'},
                           props={PROP: 'no'}, want=(False, 'flavor'))),
        ('hugepages_large', dict(
            host=True, specs={'hw:mem_page_size': 'large'}, props={},
            want=(False, 'hugepages'))),
        ('hugepages_1gb', dict(
            host=True, specs={'hw:mem_page_size': '1GB'}, props={},
            want=(False, 'hugepages'))),
        ('hugepages_2048', dict(
            host=True, specs={'hw:mem_page_size': '2048'}, props={},
            want=(False, 'hugepages'))),
        ('small_pages', dict(host=True, specs={'hw:mem_page_size': 'small'},
                             props={}, want=(True, 'host'))),
        ('any_pages', dict(host=True, specs={'hw:mem_page_size': 'any'},
                           props={}, want=(True, 'host'))),
        ('four_kib', dict(host=True, specs={'hw:mem_page_size': '4KiB'},
                          props={}, want=(True, 'host'))),
        ('image_hugepages_flavor_allows', dict(
            host=True, specs={'hw:mem_page_size': 'any'},
            props={'hw_mem_page_size': '2MB'}, want=(False, 'hugepages'))),
        ('image_hugepages_flavor_silent', dict(
            # Nova refuses the image's page size without the flavor's
            # leave: the guest gets small pages
            host=True, specs={}, props={'hw_mem_page_size': '2MB'},
            want=(True, 'host'))),
        ('realtime', dict(host=True, specs={'hw:cpu_realtime': 'yes'},
                          props={}, want=(False, 'realtime'))),
        ('not_realtime', dict(host=True, specs={'hw:cpu_realtime': 'no'},
                              props={}, want=(True, 'host'))),
        ('dedicated', dict(host=True, specs={'hw:cpu_policy': 'dedicated'},
                           props={}, want=(False, 'dedicated'))),
        ('shared', dict(host=True, specs={'hw:cpu_policy': 'shared'},
                        props={}, want=(True, 'host'))),
        ('dedicated_but_flavor_says', dict(
            host=True, specs={'hw:cpu_policy': 'dedicated', SPEC: 'true'},
            props={}, want=(True, 'flavor'))),
        ('hugepages_image_cannot_turn_it_on', dict(
            host=True, specs={'hw:mem_page_size': 'large'},
            props={PROP: 'true'}, want=(False, 'hugepages'))),
    ]

    def test_decision(self):
        got = balloon_policy.free_page_reporting(self.host, self.specs,
                                                 self.props)
        self.assertEqual(self.want, (got.on, got.source))
        self.assertTrue(got.why)


class RefusedTest(test.TestCase):

    def test_a_value_that_is_not_a_boolean(self):
        for specs, props, words in (
                ({SPEC: 'maybe'}, {}, "Flavor extra spec "
                 "hw:mem_free_page_reporting='maybe' is not valid: expected "
                 'true or false'),
                ({}, {PROP: 'maybe'}, "Image property "
                 "hw_mem_free_page_reporting='maybe' is not valid"),
                ({'hw:mem_page_size': 'huge'}, {}, "hw:mem_page_size='huge'"
                 ' is not valid: expected small, large, any, or a size')):
            e = self.assertRaises(
                exception.ValidationError, balloon_policy.free_page_reporting,
                True, specs, props)
            self.assertIn(words, str(e))
            self.assertEqual(1, len(str(e).splitlines()))

    def test_a_flavor_and_image_that_disagree(self):
        e = self.assertRaises(
            exception.FlavorImageConflict, balloon_policy.free_page_reporting,
            True, {SPEC: 'true'}, {PROP: 'false'})
        self.assertIn('hw:mem_free_page_reporting', str(e))
        self.assertIn('hw_mem_free_page_reporting', str(e))


class BalloonXMLTest(test.TestCase):
    """What the driver writes: a plain guest's balloon byte for byte as
    Nova's; off written out, not left to QEMU's default.
    """

    def test_plain_guest_unchanged(self):
        balloon = driver._get_guest_memballoon_config('kvm', 10, True)
        self.assertXmlEqual(
            '<memballoon model="virtio" autodeflate="on" '
            'freePageReporting="on"><stats period="10"/></memballoon>',
            balloon.to_xml())

    def test_off(self):
        balloon = driver._get_guest_memballoon_config('qemu', 10, False)
        self.assertXmlEqual(
            '<memballoon model="virtio" autodeflate="on" '
            'freePageReporting="off"><stats period="10"/></memballoon>',
            balloon.to_xml())

    def test_none_has_no_switches(self):
        balloon = driver._get_guest_memballoon_config('kvm', 0, False)
        self.assertXmlEqual('<memballoon model="none"/>', balloon.to_xml())


class UpstreamBalloonTestsTest(test.TestCase):
    """Upstream Nova 34's own tests of its balloon class
    (LibvirtConfigMemoryBalloonTest, read from the nova==34.0.0 that
    tools/install-deps installs beside us) run against our class: each
    test's attribute settings made on ours, its expected XML compared with
    ours. Nothing of upstream is imported or copied: its test file is read
    as data.
    """

    def _upstream_tests(self):
        path = os.path.join(
            sys.prefix, 'nova-upstream', 'lib',
            f'python{sys.version_info.major}.{sys.version_info.minor}',
            'site-packages', 'nova', 'tests', 'unit', 'virt', 'libvirt',
            'test_config.py')
        if not os.path.exists(path):
            self.fail(f'{path} is missing: run tools/install-deps')
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and \
                    node.name == 'LibvirtConfigMemoryBalloonTest':
                return [n for n in node.body
                        if isinstance(n, ast.FunctionDef)]
        self.fail('upstream has no LibvirtConfigMemoryBalloonTest')

    def test_upstream_expectations_hold_for_our_class(self):
        tests = self._upstream_tests()
        self.assertGreaterEqual(len(tests), 2)
        for method in tests:
            ours = vconfig.LibvirtConfigMemoryBalloon()
            expected = None
            for stmt in method.body:
                if isinstance(stmt, ast.Assign):
                    target = stmt.targets[0]
                    value = ast.literal_eval(stmt.value) if isinstance(
                        stmt.value, ast.Constant) else None
                    if isinstance(target, ast.Attribute):
                        setattr(ours, target.attr, value)
                    elif isinstance(target, ast.Name) and \
                            target.id == 'expected_xml':
                        expected = value
            self.assertIsNotNone(expected, method.name)
            self.assertXmlEqual(expected, ours.to_xml())
