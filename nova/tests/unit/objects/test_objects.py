"""Tests for the instance and image descriptions."""

from nova import exception
from nova import test
from nova.objects import image_meta
from nova.objects import instance


class InstanceTest(test.TestCase):

    def test_defaults(self):
        inst = instance.Instance('a')
        self.assertEqual((256, 1), (inst.memory_mb, inst.vcpus))
        self.assertEqual(36, len(inst.uuid))

    def test_bad_values_name_field(self):
        for kwargs, word in (({'name': 'a/b'}, 'name'),
                             ({'name': ''}, 'name'),
                             ({'name': 'a', 'memory_mb': 8}, 'memory_mb'),
                             ({'name': 'a', 'vcpus': 0}, 'vcpus'),
                             ({'name': 'a', 'vcpus': True}, 'vcpus'),
                             ({'name': 'a', 'uuid': 'nope'}, 'uuid')):
            e = self.assertRaises(exception.InvalidInstance,
                                  instance.Instance, **kwargs)
            self.assertIn(word, str(e))


class ImageMetaTest(test.TestCase):

    def test_kernel_and_disk_exclusive(self):
        self.assertRaises(exception.InvalidInstance, image_meta.ImageMeta,
                          disk_path='/d', kernel_path='/k')

    def test_ramdisk_needs_kernel(self):
        self.assertRaises(exception.InvalidInstance, image_meta.ImageMeta,
                          ramdisk_path='/r')
        self.assertRaises(exception.InvalidInstance, image_meta.ImageMeta,
                          os_command_line='quiet')

    def test_disk_format(self):
        self.assertRaises(exception.InvalidInstance, image_meta.ImageMeta,
                          disk_path='/d', disk_format='vmdk')
        self.assertTrue(image_meta.ImageMeta(kernel_path='/k')
                        .direct_kernel_boot)


class ImageMetaPropsTest(test.TestCase):

    def test_known_typed_others_carried(self):
        props = image_meta.ImageMetaProps.from_dict(
            {'hw_mem_stats_period_seconds': ' 5', 'os_distro': 'debian'})
        self.assertEqual(5, props.hw_mem_stats_period_seconds)
        self.assertEqual({'hw_mem_stats_period_seconds': 5,
                          'os_distro': 'debian'}, props.to_dict())
        self.assertEqual({}, image_meta.ImageMetaProps().to_dict())
        self.assertEqual({}, image_meta.ImageMeta().properties.to_dict())

    def test_refusals_are_one_line(self):
        for props, words in (
                ({'hw_mem_stats_period_seconds': 'x'},
                 "Image property hw_mem_stats_period_seconds='x' is not "
                 'valid: expected an integer of at most 2147483647 (0 or '
                 'below disables statistics).'),
                ({'hw:mem_stats_period_seconds': '5'},
                 "Image property 'hw:mem_stats_period_seconds' is not one "
                 'nova-libvirt knows: did you mean '
                 'hw_mem_stats_period_seconds?')):
            e = self.assertRaises(exception.ValidationError,
                                  image_meta.ImageMetaProps.from_dict, props)
            self.assertEqual(words, str(e))


class FlavorExtraSpecsTest(test.TestCase):

    def test_carried_and_checked_for_xml(self):
        inst = instance.Instance('a', flavor_extra_specs={'k': 'v', 'n': 5})
        self.assertEqual({'k': 'v', 'n': 5}, inst.flavor_extra_specs)
        self.assertEqual({}, instance.Instance('b').flavor_extra_specs)
        for specs in ({'': 'v'}, {'k': None}, {'k': 'a\x01'}, ['k'],
                      {'k' * 256: 'v'}):
            e = self.assertRaises(exception.InvalidInstance,
                                  instance.Instance, 'a',
                                  flavor_extra_specs=specs)
            self.assertNotIn('\n', str(e))
