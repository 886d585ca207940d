"""Tests for nova.virt.libvirt.config: format, parse and round trip."""

import fixtures
from lxml import etree
import testscenarios

from nova import exception
from nova import test
from nova.virt.libvirt import config

load_tests = testscenarios.load_tests_apply_scenarios


def _all_config_classes():
    pending, found = [config.LibvirtConfigObject], []
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.root_name:
            found.append(cls)
    return sorted(found, key=lambda c: c.__name__)


def _sample_object(cls):
    """A ``cls`` with its first field set."""
    obj = cls()
    first = cls.fields()[0]
    setattr(obj, first.name, _sample_value(first))
    return obj


def _sample_value(field):
    """A value for ``field`` that differs from its empty value."""
    if isinstance(field, config.Flag):
        return True
    if isinstance(field, config.NamedValues):
        return {'hw:cpu_policy': 'dedicated', f'{field.name}-2': '5'}
    if isinstance(field, config.Children):
        if field.base is config.LibvirtConfigGuestMetaNova:
            return [config.LibvirtConfigGuestMetaNovaInstance(name='vm')]
        if field.base is config.LibvirtConfigGuestDevice:
            return [config.LibvirtConfigMemoryBalloon(model='virtio',
                                                      period=5),
                    config.LibvirtConfigGuestConsole(type='pty')]
        return [_sample_object(field.base), _sample_object(field.base)]
    if isinstance(field, config.Child):
        return _sample_object(field.cls)
    kind = field.kind
    if isinstance(kind, config.Integer):
        return kind.min if kind.min is not None else 7
    if isinstance(kind, config.Enum):
        return kind.choices[-1]
    if isinstance(kind, config.Switch):
        return True
    return f'sample-{field.name}'


class BalloonFormatParseTest(test.TestCase):
    """Each row: an object and its XML, checked both ways."""

    scenarios = [
        ('virtio_with_period', {
            'obj': dict(model='virtio', autodeflate=True,
                        free_page_reporting=True, period=10),
            'xml': '<memballoon model="virtio" autodeflate="on" '
                   'freePageReporting="on"><stats period="10"/>'
                   '</memballoon>'}),
        ('none', {
            'obj': dict(model='none', autodeflate=None,
                        free_page_reporting=None),
            'xml': '<memballoon model="none"/>'}),
        ('virtio_no_period', {
            'obj': dict(model='virtio', autodeflate=None,
                        free_page_reporting=None),
            'xml': '<memballoon model="virtio"/>'}),
        ('switches_off', {
            'obj': dict(model='virtio', autodeflate=False,
                        free_page_reporting=False, period=2147483647),
            'xml': '<memballoon model="virtio" autodeflate="off" '
                   'freePageReporting="off"><stats period="2147483647"/>'
                   '</memballoon>'}),
    ]

    def test_format(self):
        obj = config.LibvirtConfigMemoryBalloon(**self.obj)
        self.assertXmlEqual(self.xml, obj.to_xml())

    def test_parse(self):
        parsed = config.LibvirtConfigMemoryBalloon().parse_str(self.xml)
        self.assertEqual(config.LibvirtConfigMemoryBalloon(**self.obj),
                         parsed)
        for name, value in self.obj.items():
            self.assertEqual(value, getattr(parsed, name))

    def test_round_trip(self):
        obj = config.LibvirtConfigMemoryBalloon(**self.obj)
        again = config.LibvirtConfigMemoryBalloon().parse_str(obj.to_xml())
        self.assertEqual(obj, again)
        self.assertXmlEqual(obj.to_xml(), again.to_xml())


class NovaSurfaceTest(test.TestCase):
    """What code and tests written for Nova's config objects touch."""

    def test_add_device(self):
        guest = config.LibvirtConfigGuest()
        balloon = config.LibvirtConfigMemoryBalloon()
        balloon.model = 'virtio'
        balloon.period = 10
        guest.add_device(balloon)
        self.assertEqual([balloon], guest.devices)
        self.assertEqual([balloon], guest.get_device(
            config.LibvirtConfigMemoryBalloon))

    def test_devices_list_checks_what_is_added(self):
        guest = config.LibvirtConfigGuest()
        for add in (guest.add_device, guest.devices.append,
                    lambda d: guest.devices.extend([d]),
                    lambda d: guest.devices.insert(0, d),
                    lambda d: guest.devices.__setitem__(slice(0, 0), [d])):
            e = self.assertRaises(exception.InvalidLibvirtConfigValue, add,
                                  '<disk/>')
            self.assertIn('LibvirtConfigGuest.devices', str(e))
        self.assertEqual([], guest.devices)
        parsed = config.LibvirtConfigGuest().parse_str(
            '<domain><devices><memballoon model="none"/></devices></domain>')
        self.assertRaises(exception.InvalidLibvirtConfigValue,
                          parsed.devices.append, 'x')
        self.assertRaises(exception.InvalidLibvirtConfigValue,
                          parsed.metadata.append,
                          config.LibvirtConfigMemoryBalloon())

    def test_owner_and_instance_names(self):
        owner = config.LibvirtConfigGuestMetaNovaOwner()
        owner.userid, owner.username = 'u-1', 'alice'
        owner.projectid, owner.projectname = 'p-1', 'web'
        instance = config.LibvirtConfigGuestMetaNovaInstance()
        instance.creationTime = '2026-11-29 12:00:00'  # Nova's spelling
        instance.owner = owner
        self.assertEqual('2026-11-29 12:00:00', instance.creation_time)
        self.assertEqual('2026-11-29 12:00:00', instance.creationTime)
        again = config.LibvirtConfigGuestMetaNovaInstance().parse_str(
            instance.to_xml())
        self.assertEqual(('alice', 'web', '2026-11-29 12:00:00'),
                         (again.owner.username, again.owner.projectname,
                          again.creationTime))
        self.assertEqual(instance, config.LibvirtConfigGuestMetaNovaInstance(
            creationTime='2026-11-29 12:00:00', owner=owner))

    def test_bad_xml_raises_what_nova_code_catches(self):
        for xml in ('<domain', '<domain></nodomain>'):
            e = self.assertRaises(etree.XMLSyntaxError,
                                  config.LibvirtConfigGuest().parse_str, xml)
            self.assertIsInstance(e, exception.LibvirtConfigParseError)
            self.assertEqual(1, len(str(e).splitlines()))
            # lxml's sentence kept, unquoted; lxml's own attribute too
            self.assertTrue(str(e).startswith(
                'Cannot parse XML: it is not well-formed ('), str(e))
            self.assertNotIn("'", str(e).split('(', 1)[1][:1])
            self.assertEqual(str(e), e.msg)

    def test_unresolved_entity_is_refused(self):
        xml = ('<!DOCTYPE domain [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
               '<domain><name>&x;</name></domain>')
        e = self.assertRaises(exception.LibvirtConfigParseError,
                              config.LibvirtConfigGuest().parse_str, xml)
        self.assertIn('without a DOCTYPE', str(e))

    def test_a_bug_is_not_reported_as_bad_xml(self):
        # Only a refused value is a parse error; a KeyError from a bug in
        # a kind propagates as itself.
        field = config.LibvirtConfigMemoryBalloon.fields()[0]

        def broken(text):
            raise KeyError('bug')
        self.useFixture(fixtures.MockPatchObject(field, 'from_xml', broken))
        self.assertRaises(KeyError, config.LibvirtConfigMemoryBalloon(
        ).parse_str, '<memballoon model="virtio"/>')


class PeriodChangeMetadataTest(test.TestCase):

    XML = ('<memstats:period xmlns:memstats="http://openstack.org/xmlns/'
           'libvirt/nova-libvirt/memstats/1.0" seconds="2" '
           'changed="1764412345"/>')

    def test_format_parse(self):
        obj = config.LibvirtConfigGuestMetaMemStatsPeriod(
            seconds=2, changed_at=1764412345)
        self.assertXmlEqual(self.XML, obj.to_xml())
        self.assertEqual(obj, config.LibvirtConfigGuestMetaMemStatsPeriod(
        ).parse_str(self.XML))

    def test_metadata_xml_is_unqualified_for_libvirt(self):
        obj = config.LibvirtConfigGuestMetaMemStatsPeriod(
            seconds=2, changed_at=1764412345)
        self.assertXmlEqual('<period seconds="2" changed="1764412345"/>',
                            config.metadata_xml(obj))

    def test_domain_facts_name_each_part(self):
        facts = config.domain_facts(
            f'<domain type="kvm"><metadata>{self.XML}</metadata><devices>'
            '<memballoon model="none"/></devices></domain>')
        self.assertEqual('kvm', facts.domain_type)
        self.assertEqual('none', facts.balloon.model)
        self.assertIsNone(facts.instance)
        self.assertEqual(2, facts.period_change.seconds)


class BalloonTest(test.TestCase):

    def test_is_a_guest_device(self):
        self.assertTrue(issubclass(config.LibvirtConfigMemoryBalloon,
                                   config.LibvirtConfigGuestDevice))
        self.assertEqual('memballoon',
                         config.LibvirtConfigMemoryBalloon.root_name)

    def test_new_object_has_only_nova_defaults(self):
        obj = config.LibvirtConfigMemoryBalloon()
        self.assertIsNone(obj.model)
        self.assertIsNone(obj.period)
        self.assertXmlEqual('<memballoon autodeflate="on" '
                            'freePageReporting="on"/>', obj.to_xml())

    def test_nova_style_construction_gets_nova_xml(self):
        # Written as Nova's code and tests write it: no arguments, then
        # attributes.
        obj = config.LibvirtConfigMemoryBalloon()
        obj.model = 'virtio'
        obj.period = 11
        self.assertXmlEqual(
            '<memballoon model="virtio" autodeflate="on" '
            'freePageReporting="on"><stats period="11"/></memballoon>',
            obj.to_xml())

    def test_defaults_are_defaults_not_policy(self):
        obj = config.LibvirtConfigMemoryBalloon(model='virtio',
                                                autodeflate=False)
        obj.free_page_reporting = None
        self.assertXmlEqual('<memballoon model="virtio" autodeflate="off"/>',
                            obj.to_xml())
        # and what the XML lacks, a parse leaves absent
        parsed = config.LibvirtConfigMemoryBalloon().parse_str(
            '<memballoon model="virtio"/>')
        self.assertEqual((None, None), (parsed.autodeflate,
                                        parsed.free_page_reporting))

    def test_no_policy_in_class(self):
        # model none writes what it was given: the driver leaves the
        # virtio switches out there.
        obj = config.LibvirtConfigMemoryBalloon(
            model='none', autodeflate=None, free_page_reporting=None)
        el = obj.format_dom()
        self.assertEqual({'model': 'none'}, dict(el.attrib))
        self.assertIsNone(el.find('stats'))

    def test_period_bounds_on_assignment(self):
        obj = config.LibvirtConfigMemoryBalloon()
        obj.period = 1
        obj.period = config.INT_MAX
        for bad in (0, -1, config.INT_MAX + 1, '10', 1.5, True):
            e = self.assertRaises(exception.InvalidLibvirtConfigValue,
                                  setattr, obj, 'period', bad)
            self.assertIn('LibvirtConfigMemoryBalloon.period', str(e))
            self.assertIn(repr(bad), str(e))
            self.assertIn('an integer from 1 to 2147483647', str(e))
        self.assertEqual(config.INT_MAX, obj.period)

    def test_period_none_removes_stats(self):
        obj = config.LibvirtConfigMemoryBalloon(model='virtio', period=3)
        obj.period = None
        self.assertXmlEqual('<memballoon model="virtio" autodeflate="on" '
                            'freePageReporting="on"/>', obj.to_xml())

    def test_bad_model_on_assignment(self):
        e = self.assertRaises(exception.InvalidLibvirtConfigValue,
                              config.LibvirtConfigMemoryBalloon,
                              model='balloon')
        self.assertIn("'virtio'", str(e))
        self.assertIn("'balloon'", str(e))

    def test_switch_takes_bool_only(self):
        self.assertRaises(exception.InvalidLibvirtConfigValue,
                          config.LibvirtConfigMemoryBalloon,
                          autodeflate='on')

    def test_unknown_keyword(self):
        self.assertRaises(TypeError, config.LibvirtConfigMemoryBalloon,
                          stats_period=10)

    def test_parse_errors_name_element_attribute_value(self):
        cases = [
            ('<memballoon model="virtio"><stats period="ten"/></memballoon>',
             "<stats> attribute 'period': 'ten'"),
            ('<memballoon model="virtio"><stats period="0"/></memballoon>',
             "<stats> attribute 'period': '0'"),
            ('<memballoon model="virtio" autodeflate="yes"/>',
             "<memballoon> attribute 'autodeflate': 'yes'"),
            ('<memballoon model="vmware"/>',
             "<memballoon> attribute 'model': 'vmware'"),
        ]
        for xml, expected in cases:
            e = self.assertRaises(exception.LibvirtConfigParseError,
                                  config.LibvirtConfigMemoryBalloon().
                                  parse_str, xml)
            self.assertIn(expected, str(e))

    def test_parse_wrong_root(self):
        e = self.assertRaises(exception.LibvirtConfigParseError,
                              config.LibvirtConfigMemoryBalloon().parse_str,
                              '<disk type="file"/>')
        self.assertIn('<memballoon>', str(e))

    def test_parse_malformed(self):
        self.assertRaises(exception.LibvirtConfigParseError,
                          config.LibvirtConfigMemoryBalloon().parse_str,
                          '<memballoon model="virtio">')

    def test_parse_ignores_unmodelled_xml(self):
        xml = ('<memballoon model="virtio"><alias name="balloon0"/>'
               '<stats period="4"/><address type="pci" domain="0x0000" '
               'bus="0x00" slot="0x05" function="0x0"/></memballoon>')
        obj = config.LibvirtConfigMemoryBalloon().parse_str(xml)
        self.assertEqual(
            config.LibvirtConfigMemoryBalloon(
                model='virtio', period=4, autodeflate=None,
                free_page_reporting=None), obj)

    def test_parse_does_not_expand_entities(self):
        xml = ('<!DOCTYPE m [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
               '<memballoon model="virtio"><stats period="&e;"/>'
               '</memballoon>')
        e = self.assertRaises(exception.LibvirtConfigParseError,
                              config.LibvirtConfigMemoryBalloon().parse_str,
                              xml)
        self.assertNotIn('root:', str(e))

    def test_repr_shows_xml(self):
        obj = config.LibvirtConfigMemoryBalloon(model='none',
                                                autodeflate=None,
                                                free_page_reporting=None)
        self.assertIn('<memballoon model="none"/>', repr(obj))

    def test_equality(self):
        a = config.LibvirtConfigMemoryBalloon(model='virtio', period=2)
        b = config.LibvirtConfigMemoryBalloon(model='virtio', period=2)
        self.assertEqual(a, b)
        b.period = 3
        self.assertNotEqual(a, b)
        self.assertNotEqual(a, config.LibvirtConfigGuestConsole())


class GuestTest(test.TestCase):

    XML = """
        <domain type="qemu">
          <name>demo</name>
          <uuid>d6a4a2f8-2d5a-4c1a-9a7e-1b8c3d6f0e21</uuid>
          <memory unit="KiB">262144</memory>
          <vcpu>2</vcpu>
          <os>
            <type>hvm</type>
            <kernel>/k</kernel>
            <initrd>/i</initrd>
            <cmdline>console=ttyS0</cmdline>
          </os>
          <features><acpi/><apic/></features>
          <clock offset="utc"/>
          <devices>
            <serial type="file">
              <source path="/tmp/console.log"/>
              <target port="0"/>
            </serial>
            <memballoon model="virtio" autodeflate="on"
                        freePageReporting="on"><stats period="10"/>
            </memballoon>
          </devices>
        </domain>"""

    def _guest(self):
        return config.LibvirtConfigGuest(
            virt_type='qemu', name='demo',
            uuid='d6a4a2f8-2d5a-4c1a-9a7e-1b8c3d6f0e21', memory=262144,
            vcpus=2, os_type='hvm', os_kernel='/k', os_initrd='/i',
            os_cmdline='console=ttyS0', acpi=True, apic=True,
            clock_offset='utc', devices=[
                config.LibvirtConfigGuestSerial(
                    type='file', source_path='/tmp/console.log',
                    target_port=0),
                config.LibvirtConfigMemoryBalloon(model='virtio',
                                                  period=10)])

    def test_format(self):
        xml = self._guest().to_xml()
        self.assertXmlEqual(self.XML, xml)
        self.assertValidDomain(xml)

    def test_parse(self):
        self.assertEqual(self._guest(),
                         config.LibvirtConfigGuest().parse_str(self.XML))

    def test_parse_skips_unmodelled_devices(self):
        xml = self.XML.replace(
            '<devices>', '<devices><emulator>/usr/bin/qemu</emulator>'
            '<controller type="usb" index="0"/>')
        guest = config.LibvirtConfigGuest().parse_str(xml)
        self.assertEqual(2, len(guest.devices))
        balloon = self.get_one_device(guest,
                                      config.LibvirtConfigMemoryBalloon)
        self.assertEqual(10, balloon.period)

    def test_memory_unit_must_be_kib(self):
        xml = self.XML.replace('unit="KiB"', 'unit="MiB"')
        e = self.assertRaises(exception.LibvirtConfigParseError,
                              config.LibvirtConfigGuest().parse_str, xml)
        self.assertIn("<memory> attribute 'unit': 'MiB'", str(e))

    def test_flags_absent(self):
        xml = self.XML.replace('<features><acpi/><apic/></features>', '')
        guest = config.LibvirtConfigGuest().parse_str(xml)
        self.assertFalse(guest.acpi)
        self.assertFalse(guest.apic)

    def test_devices_must_be_devices(self):
        self.assertRaises(exception.InvalidLibvirtConfigValue,
                          config.LibvirtConfigGuest, devices=['<disk/>'])


class SweepTest(test.TestCase):
    """Every class, every declared field, populated and round-tripped."""

    def test_every_class_round_trips_every_field(self):
        classes = _all_config_classes()
        self.assertIn(config.LibvirtConfigMemoryBalloon, classes)
        for cls in classes:
            obj = cls()
            for field in cls.fields():
                setattr(obj, field.name, _sample_value(field))
            again = cls().parse_str(obj.to_xml())
            for field in cls.fields():
                self.assertEqual(
                    _sample_value(field), getattr(again, field.name),
                    f'{cls.__name__}.{field.name} was lost in a round '
                    f'trip through:\n{obj.to_xml()}')
            self.assertEqual(obj, again)

    def test_declared_fields_are_unique_facts(self):
        # Two fields writing the same attribute would fight each other.
        for cls in _all_config_classes():
            facts = [(type(f).__name__, f.path, getattr(f, 'xml_name', ''),
                      getattr(f, 'cls', None)) for f in cls.fields()]
            self.assertEqual(len(facts), len(set(facts)), cls.__name__)

    def test_format_builds_elements(self):
        el = config.LibvirtConfigMemoryBalloon(model='virtio',
                                               period=1).format_dom()
        self.assertIsInstance(el, etree._Element)
        self.assertEqual('1', el.find('stats').get('period'))


class _Quoted(config.LibvirtConfigObject):
    """A namespace with a quote, which the generated reader must take as
    data (XML names cannot hold one; a namespace URI can).
    """

    root_name = 'thing'
    namespace = "urn:it's"
    prefix = 'q'
    label = config.Attribute('label', config.String(), path='part')


class ReaderTest(test.TestCase):
    """The parse each class compiles from its fields (_compile_reader)."""

    def test_first_of_repeated_elements_wins(self):
        # As find() would: the first <boot> is the first boot device, and
        # the first <type> gives both its text and its arch.
        guest = config.LibvirtConfigGuest().parse_str(
            '<domain type="qemu"><os><type>hvm</type>'
            '<type arch="x86_64">exe</type><boot dev="hd"/>'
            '<boot dev="cdrom"/></os></domain>')
        self.assertEqual('hd', guest.os_boot_dev)
        self.assertEqual('hvm', guest.os_type)
        self.assertIsNone(guest.os_arch)

    def test_parse_forgets_earlier_values(self):
        guest = config.LibvirtConfigGuest(name='old', acpi=True,
                                          devices=[config.
                                                   LibvirtConfigGuestConsole(
                                                       type='pty')])
        guest.parse_str('<domain type="kvm"><vcpu>3</vcpu></domain>')
        self.assertEqual(config.LibvirtConfigGuest(virt_type='kvm',
                                                   vcpus=3), guest)

    def test_names_are_data_not_code(self):
        obj = _Quoted(label="x'y\"z")
        again = _Quoted().parse_str(obj.to_xml())
        self.assertEqual("x'y\"z", again.label)

    def test_blank_text_between_elements_is_dropped(self):
        root = config.parse_xml('<domain>\n  <name> a </name>\n</domain>')
        self.assertIsNone(root.text)
        self.assertEqual(' a ', root[0].text)

    def test_integer_text_is_ascii_decimal(self):
        kind = config.Integer(min=0)
        self.assertEqual(12, kind.from_xml('12'))
        self.assertEqual(12, kind.from_xml(' 12 '))
        for bad in ('\u0661\u0662', '1_2', '+1', '', '0x1', '1.0'):
            self.assertRaises(ValueError, kind.from_xml, bad)


class FieldValueTest(test.TestCase):
    """Values live in the object; the class holds the empty ones."""

    def test_unset_fields_read_empty(self):
        guest = config.LibvirtConfigGuest()
        self.assertIsNone(guest.name)
        self.assertIs(False, guest.acpi)
        self.assertEqual([], guest.devices)
        # Each object gets a list of its own.
        guest.devices.append(config.LibvirtConfigGuestConsole(type='pty'))
        self.assertEqual([], config.LibvirtConfigGuest().devices)

    def test_misspelt_field_is_refused(self):
        balloon = config.LibvirtConfigMemoryBalloon()
        e = self.assertRaises(AttributeError, setattr, balloon, 'perod', 5)
        self.assertIn("LibvirtConfigMemoryBalloon has no field 'perod'",
                      str(e))

    def test_assignment_is_checked(self):
        balloon = config.LibvirtConfigMemoryBalloon()
        self.assertRaises(exception.InvalidLibvirtConfigValue, setattr,
                          balloon, 'period', 0)
        self.assertIsNone(balloon.period)
