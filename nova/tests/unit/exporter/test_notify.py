"""systemd's notify protocol, against a datagram socket of the test's."""

import os
import socket
import subprocess
import sys

import fixtures

from nova import test
from nova.exporter import notify


class NotifyTest(test.TestCase):

    def listen(self, abstract: bool = False):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        if abstract:
            name = f'nova-libvirt-test-{os.getpid()}-{id(self)}'
            sock.bind('\0' + name)
            address = '@' + name
        else:
            address = os.path.join(
                self.useFixture(fixtures.TempDir()).path, 'notify')
            sock.bind(address)
        sock.settimeout(10)
        self.useFixture(fixtures.EnvironmentVariable('NOTIFY_SOCKET',
                                                     address))
        return sock

    def test_fields_are_one_datagram(self):
        sock = self.listen()
        self.assertTrue(notify.notify('READY=1', 'STATUS=Serving'))
        self.assertEqual(b'READY=1\nSTATUS=Serving', sock.recv(4096))

    def test_abstract_socket(self):
        sock = self.listen(abstract=True)
        self.assertTrue(notify.notify('WATCHDOG=1'))
        self.assertEqual(b'WATCHDOG=1', sock.recv(4096))

    def test_outside_systemd_nothing_happens(self):
        self.useFixture(fixtures.EnvironmentVariable('NOTIFY_SOCKET'))
        self.assertFalse(notify.notify('READY=1'))

    def test_a_socket_gone_is_not_an_error(self):
        self.useFixture(fixtures.EnvironmentVariable(
            'NOTIFY_SOCKET', '/nonexistent/notify'))
        self.assertFalse(notify.notify('READY=1'))

    def test_watchdog_interval_is_half_the_timeout(self):
        for usec, pid, expected in (
                ('15000000', None, 7.5),
                ('15000000', str(os.getpid()), 7.5),
                ('15000000', '1', None),   # meant for another process
                ('0', None, None),
                ('', None, None),
                ('soon', None, None)):
            with fixtures.EnvironmentVariable('WATCHDOG_USEC', usec), \
                    fixtures.EnvironmentVariable('WATCHDOG_PID', pid):
                self.assertEqual(expected, notify.watchdog_interval(),
                                 (usec, pid))


# A process given a listening socket at fd 3, as systemd passes it.
ACTIVATED = """
import os, socket
from nova.exporter import notify
sock = socket.socket()
sock.bind(('127.0.0.1', 0))
sock.listen()
os.dup2(sock.fileno(), 3)
os.environ.update(LISTEN_FDS='1', LISTEN_PID=str(os.getpid()),
                  LISTEN_FDNAMES='web')
given = notify.listen_sockets()
print(len(given), given[0].getsockname() == sock.getsockname(),
      given[0].get_inheritable(),
      [k for k in os.environ if k.startswith('LISTEN_')],
      notify.listen_sockets())
"""


class ListenSocketsTest(test.TestCase):

    def test_taken_once_and_not_inherited(self):
        out = subprocess.run([sys.executable, '-c', ACTIVATED],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(0, out.returncode, out.stderr)
        self.assertEqual('1 True False [] []', out.stdout.strip())

    def test_meant_for_another_process(self):
        with fixtures.EnvironmentVariable('LISTEN_FDS', '1'), \
                fixtures.EnvironmentVariable('LISTEN_PID', '1'):
            self.assertEqual([], notify.listen_sockets())
