"""Tests for the test guest's initramfs (the kernel download is covered by
the functional tests, which build and boot the real image).
"""

import gzip
import os
import subprocess

import fixtures

from nova import test
from nova import testimage


class InitramfsTest(test.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        busybox = os.path.join(self.tmp, 'busybox')
        with open(busybox, 'w') as f:
            f.write('#!/bin/sh\n')
        self.useFixture(fixtures.MockPatchObject(testimage, 'BUSYBOX',
                                                 busybox))
        self.modules = {}
        for name in (testimage.VIRTIO_MODULES + (testimage.BALLOON_MODULE,)
                     + testimage.SWAP_MODULES):
            self.modules[name] = os.path.join(self.tmp, name + '.ko')
            with open(self.modules[name], 'w') as f:
                f.write(name)

    def _contents(self, variant):
        path = os.path.join(self.tmp, f'initrd-{variant}.gz')
        testimage._write_initramfs(path, self.modules, variant)
        with gzip.open(path) as f:
            archive = f.read()
        listing = subprocess.run(['cpio', '-t', '--quiet'], input=archive,
                                 capture_output=True, check=True)
        files = set(listing.stdout.decode().split())
        init = subprocess.run(['cpio', '-i', '--to-stdout', '--quiet',
                               'init'], input=archive, capture_output=True,
                              check=True).stdout.decode()
        return files, init

    def test_balloon_variant_loads_virtio_balloon_last(self):
        files, init = self._contents('balloon')
        self.assertIn('init', files)
        self.assertIn('bin/busybox', files)
        self.assertIn('lib/modules/virtio_balloon.ko', files)
        order = ' '.join(testimage.VIRTIO_MODULES + ('virtio_balloon',))
        self.assertIn(f'for module in {order}; do', init)
        self.assertIn(testimage.READY_LINE + ' (balloon)', init)

    def test_the_balloon_variant_can_hog_memory_on_request(self):
        files, init = self._contents('balloon')
        for name in testimage.SWAP_MODULES:
            self.assertIn(f'lib/modules/{name}.ko', files)
        # only with nova_libvirt_hog=N on the command line
        self.assertIn(f'case $word in {testimage.HOG_PARAMETER}=*)', init)
        self.assertIn('swapon /dev/zram0', init)
        self.assertIn(testimage.HOG_READY, init)
        self.assertEqual(
            f'{testimage.CMDLINE} {testimage.HOG_PARAMETER}=120',
            testimage.TestImage('balloon', 'k', 'r').hog_cmdline(120))

    def test_nodriver_variant_has_no_balloon_module(self):
        files, init = self._contents('nodriver')
        self.assertNotIn('lib/modules/virtio_balloon.ko', files)
        self.assertIn('lib/modules/virtio_pci.ko', files)
        self.assertNotIn('virtio_balloon', init)
        self.assertIn(testimage.READY_LINE + ' (nodriver)', init)
