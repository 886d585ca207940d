"""Nova's instance metadata as upstream Nova 34 writes it, beside ours.

Upstream Nova (nova==34.0.0, which tools/install-deps puts in a
virtualenv of its own) runs in a process of its own: its libvirt driver's
``_get_guest_config_meta`` builds ``<nova:instance>`` for a flavor, an
image and an owner, and its XML is compared, semantically, with what our
driver's metadata step builds for the same instance. Nothing of upstream
is imported here.
"""

import datetime
import json
import os
import subprocess
import sys

from nova import test
from nova.objects import image_meta as image_meta_obj
from nova.objects import instance as instance_obj
from nova.virt.libvirt import driver

UPSTREAM_PYTHON = os.path.join(sys.prefix, 'nova-upstream', 'bin',
                               'python')

# Run by upstream Nova's interpreter: reads the instance as JSON on stdin,
# prints the <nova:instance> element its driver writes.
UPSTREAM = r"""
import json, sys, warnings
warnings.simplefilter('ignore')
from nova import objects
from nova.objects import image_meta
from nova.virt import driver
from nova.virt.libvirt import driver as libvirt_driver
objects.register_all()
given = json.load(sys.stdin)
# what Nova's ImageMeta.from_instance hands the driver: Glance's
# properties through its ImageMetaProps
properties = image_meta.ImageMetaProps.from_dict(
    given['properties']).to_dict()
dmeta = driver.InstanceDriverMetadata(
    root_type=None, root_id=None,
    instance_meta=driver.NovaInstanceMeta(name=given['display_name'],
                                          uuid=given['uuid']),
    owner=driver.OwnerMeta(userid=given['user_id'],
                           username=given['user_name'],
                           projectid=given['project_id'],
                           projectname=given['project_name']),
    image=driver.ImageMeta(id=None, name=None, container_format=None,
                           disk_format=None, min_disk=None, min_ram=None,
                           properties=properties),
    flavor=driver.FlavorMeta(name=given['flavor_name'],
                             flavorid=given['flavor_id'],
                             memory_mb=given['memory_mb'],
                             vcpus=given['vcpus'], root_gb=0,
                             ephemeral_gb=0,
                             extra_specs=given['extra_specs'], swap=0),
    network_info=[], nova_package=given['package'],
    creation_time=given['created'])
meta = libvirt_driver.LibvirtDriver._get_guest_config_meta(None, dmeta)
print(meta.to_xml())
"""

CREATED = datetime.datetime(2026, 12, 1, 8, 30, 15,
                            tzinfo=datetime.timezone.utc)


class UpstreamMetadataTest(test.TestCase):

    def setUp(self):
        super().setUp()
        self.assertTrue(os.path.exists(UPSTREAM_PYTHON),
                        f'{UPSTREAM_PYTHON} is missing: run '
                        'tools/install-deps')

    def upstream(self, instance, properties: dict) -> str:
        given = {
            'display_name': instance.display_name, 'uuid': instance.uuid,
            'user_id': instance.user_id, 'user_name': instance.user_name,
            'project_id': instance.project_id,
            'project_name': instance.project_name,
            'flavor_name': instance.flavor_name,
            'flavor_id': instance.flavor_id,
            'memory_mb': instance.memory_mb, 'vcpus': instance.vcpus,
            'extra_specs': instance.flavor_extra_specs,
            'properties': properties, 'package': '34.0.0',
            'created': instance.created_at.timestamp()}
        result = subprocess.run([UPSTREAM_PYTHON, '-c', UPSTREAM],
                                input=json.dumps(given), capture_output=True,
                                text=True, timeout=120, cwd='/')
        self.assertEqual(0, result.returncode, result.stderr)
        return result.stdout

    def ours(self, instance, properties: dict) -> str:
        image = image_meta_obj.ImageMeta(
            kernel_path='/k',
            properties=image_meta_obj.ImageMetaProps.from_dict(properties))
        return driver._get_guest_metadata_config(instance, image,
                                                 '34.0.0').to_xml()

    def instance(self, extra_specs: dict):
        return instance_obj.Instance(
            'rt-1', memory_mb=2048, vcpus=2, display_name='Real time 1',
            project_name='nfv', user_name='alice', flavor_name='rt.small',
            flavor_id='42', created_at=CREATED,
            flavor_extra_specs=extra_specs)

    def test_same_xml_for_the_same_flavor_and_image(self):
        for specs, properties in (
                ({}, {}),
                ({'hw:cpu_realtime': 'yes', 'hw:cpu_policy': 'dedicated',
                  'hw:mem_stats_period_seconds': '0'},
                 {'hw_cpu_policy': 'dedicated', 'hw_rng_model': 'virtio'}),
                ({'hw:mem_stats_period_seconds': '2', 'quota:cpu_shares':
                  '2048'}, {'os_distro': 'debian'})):
            instance = self.instance(specs)
            self.assertXmlEqual(self.upstream(instance, properties),
                                self.ours(instance, properties))

    def test_upstream_drops_the_image_property_it_does_not_know(self):
        # Nova 34 writes only the image properties it knows; the period's
        # is not one of them, so a guest Nova built carries only the
        # flavor's choice (the operator guide says so).
        instance = self.instance({'hw:mem_stats_period_seconds': '5'})
        properties = {'hw_mem_stats_period_seconds': '5',
                      'hw_cpu_policy': 'dedicated'}
        upstream = self.upstream(instance, properties)
        self.assertIn('hw:mem_stats_period_seconds', upstream)
        self.assertNotIn('hw_mem_stats_period_seconds', upstream)
        ours = self.ours(instance, properties)
        self.assertIn(
            '<nova:property name="hw_mem_stats_period_seconds">5'
            '</nova:property>', ours)
        self.assertXmlEqual(upstream, self.ours(
            instance, {'hw_cpu_policy': 'dedicated'}))
