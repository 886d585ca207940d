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
