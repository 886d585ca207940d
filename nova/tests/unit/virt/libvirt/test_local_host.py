"""What this host has: the default connection and why, where else guests
are, and whether the QEMU a connection starts may use KVM.
"""

import os
import socket

import fixtures

from nova import test
from nova.virt.libvirt import local_host


class KvmTest(test.TestCase):
    """KVM is checked as the user whose QEMU the connection starts."""

    def test_asked_as_the_user_that_runs_qemu(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        conf = os.path.join(tmp, 'qemu.conf')
        with open(conf, 'w') as f:
            f.write('#user = "libvirt-qemu"\n')
        self.assertEqual('libvirt-qemu',
                         local_host.qemu_user('qemu:///system', conf))
        with open(conf, 'w') as f:
            f.write('user = "+0"\n')
        self.assertEqual('root', local_host.qemu_user('qemu:///system', conf))
        self.assertEqual('root', local_host.qemu_user(
            'qemu:///embed?root=/x', conf))
        self.assertIsNone(local_host.qemu_user('qemu+ssh://h/system', conf))
        # a device only its owner may open
        device = os.path.join(tmp, 'kvm')
        open(device, 'w').close()
        os.chmod(device, 0o600)
        self.assertIsNone(local_host.kvm_unusable('root', device))
        self.assertIn('(user nobody) cannot open',
                      local_host.kvm_unusable('nobody', device))
        self.assertIn('-rw------- root:root',
                      local_host.kvm_unusable('nobody', device))
        os.chmod(device, 0o666)
        self.assertIsNone(local_host.kvm_unusable('nobody', device))
        self.assertIn('is missing', local_host.kvm_unusable(
            'nobody', device + '.none'))
        self.assertIsNone(local_host.kvm_unusable(None, device))


class ConnectionChoiceTest(test.TestCase):
    """The default connection, as Nova and virsh choose it."""

    def test_table(self):
        embed = 'qemu:///embed?root=/s/libvirt/qemu-embed'
        sock = '/run/libvirt/libvirt-sock'
        for virt_type, uri, found, expected, why in (
                ('kvm', 'test:///default', sock, 'test:///default',
                 '[libvirt] connection_uri'),
                ('lxc', '', sock, 'lxc:///system', 'virt_type is lxc'),
                ('kvm', '', sock, 'qemu:///system', f'{sock} exists'),
                ('qemu', '', sock, 'qemu:///system', "the host's libvirtd"),
                ('kvm', '', None, embed, 'no libvirtd socket exists'),
                ('qemu', '', None, embed, 'the embedded QEMU driver')):
            got, reason = local_host.choose_connection(virt_type, uri, '/s',
                                                   found)
            self.assertEqual(expected, got, (virt_type, uri, found))
            self.assertIn(why, reason)

    def test_a_socket_is_a_socket(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        plain = os.path.join(tmp, 'plain')
        open(plain, 'w').close()
        listening = os.path.join(tmp, 'sock')
        server = socket.socket(socket.AF_UNIX)
        self.addCleanup(server.close)
        server.bind(listening)
        self.assertIsNone(local_host.libvirtd_socket((plain, tmp + '/none')))
        self.assertEqual(listening,
                         local_host.libvirtd_socket((plain, listening)))

    def test_guests_elsewhere(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        defs = os.path.join(tmp, 'libvirt', 'qemu-embed', 'etc', 'qemu')
        os.makedirs(defs)
        self.assertEqual([],
                         local_host.guests_elsewhere('qemu:///system', tmp))
        for name in ('a.xml', 'b.xml', 'notes.txt'):
            open(os.path.join(defs, name), 'w').close()
        hints = local_host.guests_elsewhere('qemu:///system', tmp)
        self.assertEqual(1, len(hints))
        self.assertIn('holds 2 guests: set [libvirt] connection_uri = '
                      'qemu:///embed?root=', hints[0])
        # beside an embedded driver: the host's libvirtd, when it answers
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.local_host.libvirtd_socket',
            return_value='/run/libvirt/libvirt-sock'))
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.connection.system_guest_count', return_value=7))
        hints = local_host.guests_elsewhere('qemu:///embed?root=/x', tmp)
        self.assertEqual(["the host's libvirtd (qemu:///system) has 7 "
                          'guests: leave [libvirt] connection_uri empty, or '
                          'set it to qemu:///system, to read them.'], hints)
