"""Tests for the guest builder in nova.virt.libvirt.driver."""

import datetime
import functools
import platform

import fixtures
from lxml import etree
import testscenarios

from nova import exception
from nova import test
from nova.objects import image_meta as image_meta_obj
from nova.objects import instance as instance_obj
from nova.virt.libvirt import config
from nova.virt.libvirt import driver

load_tests = testscenarios.load_tests_apply_scenarios

UUID = '0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f'
USER_ID = 'a1b2c3d4e5f60718293a4b5c6d7e8f90'
PROJECT_ID = '0f1e2d3c4b5a69788796a5b4c3d2e1f0'
CREATED = datetime.datetime(2026, 11, 25, 10, 30, 5,
                            tzinfo=datetime.timezone.utc)
ARCH = platform.machine()
METADATA = f"""
  <metadata>
    <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
      <nova:package version="1.2.3"/>
      <nova:name>Web server 1</nova:name>
      <nova:creationTime>2026-11-25 10:30:05</nova:creationTime>
      <nova:flavor name="m1.small" id="2">
        <nova:memory>512</nova:memory>
        <nova:disk>0</nova:disk>
        <nova:swap>0</nova:swap>
        <nova:ephemeral>0</nova:ephemeral>
        <nova:vcpus>2</nova:vcpus>
        <nova:extraSpecs/>
      </nova:flavor>
      <nova:image uuid="">
        <nova:properties/>
      </nova:image>
      <nova:owner>
        <nova:user uuid="{USER_ID}">alice</nova:user>
        <nova:project uuid="{PROJECT_ID}">web</nova:project>
      </nova:owner>
      <nova:ports/>
    </nova:instance>
  </metadata>"""


def _instance(**kw):
    """An instance with every owner field given, for exact XML."""
    return instance_obj.Instance(
        'guest-1', memory_mb=512, vcpus=2, uuid=UUID,
        display_name='Web server 1', project_name='web',
        project_id=PROJECT_ID, user_name='alice', user_id=USER_ID,
        flavor_name='m1.small', flavor_id='2', created_at=CREATED, **kw)

ENABLED = ('<memballoon model="virtio" autodeflate="on" '
           'freePageReporting="on"><stats period="%d"/></memballoon>')
DISABLED = '<memballoon model="none"/>'

# (virt_type, period, expected memballoon XML or None for no element)
BALLOON_TABLE = [
    ('kvm', 10, ENABLED % 10),
    ('kvm', 1, ENABLED % 1),
    ('kvm', 2147483647, ENABLED % 2147483647),
    ('kvm', 0, DISABLED),
    ('kvm', -1, DISABLED),
    ('qemu', 10, ENABLED % 10),
    ('qemu', 2, ENABLED % 2),
    ('qemu', 0, DISABLED),
    ('qemu', -5, DISABLED),
    ('lxc', 10, None),
    ('lxc', 0, None),
    ('lxc', -1, None),
]


def _scenarios():
    return [(f'{vt}_period_{p}', {'virt_type': vt, 'period': p,
                                   'expected': xml})
            for vt, p, xml in BALLOON_TABLE]


class MemballoonPolicyTest(test.TestCase):
    """The policy step, called with two plain arguments."""

    scenarios = _scenarios()

    def test_step(self):
        got = driver._get_guest_memballoon_config(self.virt_type,
                                                  self.period)
        if self.expected is None:
            self.assertIsNone(got)
        else:
            self.assertXmlEqual(self.expected, got.to_xml())


class GuestConfigBalloonTest(test.TestCase):
    """The same table through get_guest_config and the options."""

    scenarios = _scenarios()

    def test_get_guest_config(self):
        self.flags(virt_type=self.virt_type,
                   mem_stats_period_seconds=self.period, group='libvirt')
        instance = instance_obj.Instance('guest-1', uuid=UUID)
        if self.virt_type == 'lxc':
            image = image_meta_obj.ImageMeta(disk_path='/srv/rootfs')
        else:
            image = image_meta_obj.ImageMeta(disk_path='/srv/disk.img')
        guest = driver.LibvirtDriver().get_guest_config(instance, image)
        xml = guest.to_xml()
        self.assertValidDomain(xml)
        balloons = guest.get_device(config.LibvirtConfigMemoryBalloon)
        if self.expected is None:
            self.assertEqual([], balloons)
            self.assertNotIn('memballoon', xml)
        else:
            balloon = self.get_one_device(
                guest, config.LibvirtConfigMemoryBalloon)
            self.assertXmlEqual(self.expected, balloon.to_xml())


class GuestOwnPeriodTest(test.TestCase):
    """The same table through the flavor's extra spec and the image's
    property, whatever the option says; and their metadata.
    """

    scenarios = [(name, dict(kw, source=source))
                 for name, kw in _scenarios()
                 for source in ('flavor', 'image')]

    def test_get_guest_config(self):
        self.flags(virt_type=self.virt_type, mem_stats_period_seconds=7,
                   group='libvirt')
        specs, props = {'hw:cpu_policy': 'shared'}, {}
        if self.source == 'flavor':
            specs['hw:mem_stats_period_seconds'] = str(self.period)
        else:
            props['hw_mem_stats_period_seconds'] = str(self.period)
        instance = instance_obj.Instance('guest-1', uuid=UUID,
                                         flavor_extra_specs=specs)
        image = image_meta_obj.ImageMeta(
            disk_path='/srv/rootfs' if self.virt_type == 'lxc' else
            '/srv/disk.img',
            properties=image_meta_obj.ImageMetaProps.from_dict(props))
        guest = driver.LibvirtDriver().get_guest_config(instance, image)
        self.assertValidDomain(guest.to_xml())
        balloons = guest.get_device(config.LibvirtConfigMemoryBalloon)
        if self.expected is None:
            self.assertEqual([], balloons)
        else:
            self.assertXmlEqual(self.expected, balloons[0].to_xml())
        meta = guest.metadata[0]
        self.assertEqual(specs, meta.flavor.extra_specs)
        self.assertEqual({k: int(v) for k, v in props.items()},
                         meta.image.properties)

    def test_conflict_refused(self):
        instance = instance_obj.Instance(
            'guest-1', flavor_extra_specs={'hw:mem_stats_period_seconds':
                                           '2'})
        image = image_meta_obj.ImageMeta(
            disk_path='/d', properties=image_meta_obj.ImageMetaProps(
                hw_mem_stats_period_seconds=5))
        self.assertRaises(exception.FlavorImageConflict,
                          driver.LibvirtDriver().get_guest_config, instance,
                          image)


class GuestConfigTest(test.TestCase):

    def setUp(self):
        super().setUp()
        self.flags(instances_path='/var/lib/nova/instances')
        self.instance = _instance()
        self.useFixture(fixtures.MockPatch(
            'nova.version.version_string', return_value='1.2.3'))

    def _build(self, virt_type, image, period=10):
        self.flags(virt_type=virt_type, mem_stats_period_seconds=period,
                   group='libvirt')
        guest = driver.LibvirtDriver().get_guest_config(self.instance, image)
        xml = guest.to_xml()
        self.assertValidDomain(xml)
        return xml

    def test_default_is_kvm_with_period_10(self):
        guest = driver.LibvirtDriver().get_guest_config(
            self.instance, image_meta_obj.ImageMeta(disk_path='/d'))
        self.assertEqual('kvm', guest.virt_type)
        balloon = self.get_one_device(guest,
                                      config.LibvirtConfigMemoryBalloon)
        self.assertEqual(10, balloon.period)

    def test_qemu_direct_kernel_boot(self):
        image = image_meta_obj.ImageMeta(
            kernel_path='/img/vmlinuz', ramdisk_path='/img/initrd.gz',
            os_command_line='console=ttyS0 quiet')
        self.assertXmlEqual(f"""
            <domain type="qemu">
              <name>guest-1</name>
              <uuid>{UUID}</uuid>
              <memory unit="KiB">524288</memory>
              <vcpu>2</vcpu>{METADATA}
              <os>
                <type arch="{ARCH}">hvm</type>
                <kernel>/img/vmlinuz</kernel>
                <initrd>/img/initrd.gz</initrd>
                <cmdline>console=ttyS0 quiet</cmdline>
              </os>
              <features><acpi/><apic/></features>
              <clock offset="utc"/>
              <devices>
                <serial type="file">
                  <source path="/var/lib/nova/instances/{UUID}/console.log"/>
                  <target port="0"/>
                </serial>
                {ENABLED % 7}
              </devices>
            </domain>""", self._build('qemu', image, period=7))

    def test_kvm_disk_boot(self):
        image = image_meta_obj.ImageMeta(disk_path='/img/disk.qcow2',
                                         disk_format='qcow2')
        self.assertXmlEqual(f"""
            <domain type="kvm">
              <name>guest-1</name>
              <uuid>{UUID}</uuid>
              <memory unit="KiB">524288</memory>
              <vcpu>2</vcpu>{METADATA}
              <os><type arch="{ARCH}">hvm</type><boot dev="hd"/></os>
              <features><acpi/><apic/></features>
              <clock offset="utc"/>
              <devices>
                <disk type="file" device="disk">
                  <driver name="qemu" type="qcow2"/>
                  <source file="/img/disk.qcow2"/>
                  <target dev="vda" bus="virtio"/>
                </disk>
                <serial type="file">
                  <source path="/var/lib/nova/instances/{UUID}/console.log"/>
                  <target port="0"/>
                </serial>
                {DISABLED}
              </devices>
            </domain>""", self._build('kvm', image, period=0))

    def test_lxc(self):
        image = image_meta_obj.ImageMeta(disk_path='/srv/rootfs')
        self.assertXmlEqual(f"""
            <domain type="lxc">
              <name>guest-1</name>
              <uuid>{UUID}</uuid>
              <memory unit="KiB">524288</memory>
              <vcpu>2</vcpu>{METADATA}
              <os><type arch="{ARCH}">exe</type><init>/sbin/init</init></os>
              <devices>
                <filesystem type="mount">
                  <source dir="/srv/rootfs"/>
                  <target dir="/"/>
                </filesystem>
                <console type="pty"><target type="lxc"/></console>
              </devices>
            </domain>""", self._build('lxc', image))

    def test_kernel_without_ramdisk_or_cmdline(self):
        xml = self._build('qemu', image_meta_obj.ImageMeta(
            kernel_path='/img/vmlinuz'))
        self.assertIn('<kernel>/img/vmlinuz</kernel>', xml)
        self.assertNotIn('<initrd>', xml)
        self.assertNotIn('<cmdline>', xml)

    def test_nothing_to_boot(self):
        self.flags(virt_type='qemu', group='libvirt')
        e = self.assertRaises(exception.InvalidInstance,
                              driver.LibvirtDriver().get_guest_config,
                              self.instance, image_meta_obj.ImageMeta())
        self.assertIn('kernel or a disk', str(e))

    def test_lxc_refuses_kernel(self):
        self.flags(virt_type='lxc', group='libvirt')
        self.assertRaises(exception.InvalidInstance,
                          driver.LibvirtDriver().get_guest_config,
                          self.instance, image_meta_obj.ImageMeta(
                              kernel_path='/k'))

    def test_lxc_needs_root_directory(self):
        self.flags(virt_type='lxc', group='libvirt')
        self.assertRaises(exception.InvalidInstance,
                          driver.LibvirtDriver().get_guest_config,
                          self.instance, image_meta_obj.ImageMeta())

    def test_round_trip_of_generated_guest(self):
        self.flags(virt_type='qemu', group='libvirt')
        guest = driver.LibvirtDriver().get_guest_config(
            self.instance, image_meta_obj.ImageMeta(kernel_path='/k'))
        self.assertEqual(guest,
                         config.LibvirtConfigGuest().parse_str(
                             guest.to_xml()))


class OtherStepsTest(test.TestCase):

    def test_platform_only_for_qemu_machines(self):
        self.assertEqual({}, driver._get_guest_platform('lxc'))
        self.assertEqual({'acpi': True, 'apic': True, 'clock_offset': 'utc'},
                         driver._get_guest_platform('qemu'))

    def test_console_logs_to_instance_dir(self):
        serial = driver._get_guest_console_config('kvm', '/inst/u')
        self.assertEqual('/inst/u/console.log', serial.source_path)

    def test_no_disk_when_kernel_boot(self):
        self.assertIsNone(driver._get_guest_storage_config(
            'qemu', image_meta_obj.ImageMeta(kernel_path='/k')))


class MetadataStepTest(test.TestCase):
    """Nova's instance metadata: the step, and every virt_type."""

    def test_step(self):
        got = driver._get_guest_metadata_config(
            _instance(), image_meta_obj.ImageMeta(), '1.2.3')
        self.assertXmlEqual(METADATA.replace('<metadata>', '').replace(
            '</metadata>', ''), got.to_xml())

    def test_every_virt_type_carries_it(self):
        for virt_type, image in (
                ('kvm', image_meta_obj.ImageMeta(disk_path='/d')),
                ('qemu', image_meta_obj.ImageMeta(kernel_path='/k')),
                ('lxc', image_meta_obj.ImageMeta(disk_path='/srv/r'))):
            self.flags(virt_type=virt_type, group='libvirt')
            guest = driver.LibvirtDriver().get_guest_config(
                _instance(), image)
            self.assertEqual(1, len(guest.metadata), virt_type)
            self.assertEqual('Web server 1', guest.metadata[0].name)
            self.assertValidDomain(guest.to_xml())

    def test_defaults_on_a_standalone_host(self):
        instance = instance_obj.Instance('web1', memory_mb=1024, vcpus=2)
        got = driver._get_guest_metadata_config(
            instance, image_meta_obj.ImageMeta(), '1')
        self.assertEqual('web1', got.name)
        self.assertEqual(('m1024-c2', 'm1024-c2'),
                         (got.flavor.name, got.flavor.id))
        self.assertEqual('standalone', got.owner.projectname)
        self.assertEqual(instance_obj.stable_id('project', 'standalone'),
                         got.owner.projectid)
        self.assertEqual(32, len(got.owner.userid))
        self.assertEqual(instance_obj.stable_id('user', got.owner.username),
                         got.owner.userid)


class CeilometerDiscoveryTest(test.TestCase):
    """Read a generated domain as Ceilometer's libvirt_metadata discovery
    does (namespaced XPath into <metadata>, plus os/type/@arch): every
    field it requires must come back. No dependency on Ceilometer.
    """

    NS = {'nova': 'http://openstack.org/xmlns/libvirt/nova/1.1'}

    def _read(self, xml: str) -> dict:
        root = etree.fromstring(xml.encode())
        instance = root.find('metadata/nova:instance', self.NS)
        self.assertIsNotNone(instance, 'no <nova:instance> element')

        def one(path):
            found = instance.xpath(path, namespaces=self.NS)
            self.assertEqual(1, len(found), path)
            return str(found[0])
        got = {'name': one('nova:name/text()'),
               'flavor_name': one('nova:flavor/@name'),
               'flavor_id': one('nova:flavor/@id'),
               'user_id': one('nova:owner/nova:user/@uuid'),
               'project_id': one('nova:owner/nova:project/@uuid'),
               'arch': root.find('os/type').get('arch')}
        for size in ('memory', 'disk', 'swap', 'ephemeral', 'vcpus'):
            got[size] = int(one(f'nova:flavor/nova:{size}/text()'))
        return got

    def test_every_required_field(self):
        for virt_type, image in (
                ('kvm', image_meta_obj.ImageMeta(disk_path='/d')),
                ('qemu', image_meta_obj.ImageMeta(kernel_path='/k')),
                ('lxc', image_meta_obj.ImageMeta(disk_path='/srv/r'))):
            self.flags(virt_type=virt_type, group='libvirt')
            xml = driver.LibvirtDriver().get_guest_config(
                _instance(), image).to_xml()
            self.assertEqual(
                {'name': 'Web server 1', 'flavor_name': 'm1.small',
                 'flavor_id': '2', 'user_id': USER_ID,
                 'project_id': PROJECT_ID, 'arch': ARCH, 'memory': 512,
                 'disk': 0, 'swap': 0, 'ephemeral': 0, 'vcpus': 2},
                self._read(xml), virt_type)


class VirtTypeCheckTest(test.TestCase):
    """kvm is refused in one line where KVM is not usable locally."""

    def test_table(self):
        why = "libvirtd's QEMU (user libvirt-qemu) cannot open /dev/kvm"
        for virt_type, local, unusable, refused in (
                ('kvm', True, why, True),
                ('kvm', True, None, False),
                ('kvm', False, why, False),  # a remote libvirtd decides
                ('qemu', True, why, False),
                ('lxc', True, why, False)):
            check = functools.partial(driver._check_virt_type,
                                      virt_type, local, unusable)
            if refused:
                e = self.assertRaises(exception.InvalidInstance, check)
                self.assertIn(f'kvm, but {why}: set virt_type = qemu',
                              str(e))
                self.assertEqual(1, len(str(e).splitlines()))
            else:
                check()
