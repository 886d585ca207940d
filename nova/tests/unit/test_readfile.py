"""Tests for nova.readfile: the one bounded read of a named file."""

import os
import threading

import fixtures

from nova import readfile
from nova import test


class ReadTest(test.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def _file(self, data: bytes) -> str:
        path = os.path.join(self.tmp, 'f')
        with open(path, 'wb') as f:
            f.write(data)
        return path

    def test_a_regular_file_up_to_its_bound(self):
        self.assertEqual(b'x' * 10, readfile.read(self._file(b'x' * 10), 10))
        e = self.assertRaises(readfile.Refused, readfile.read,
                              self._file(b'x' * 11), 10)
        self.assertEqual(('too-large', 11, 10), (e.what, e.size, e.limit))

    def test_a_fifo_is_refused_unread_and_never_blocks(self):
        fifo = os.path.join(self.tmp, 'fifo')
        os.mkfifo(fifo)
        found = []
        reader = threading.Thread(target=lambda: found.append(
            self.assertRaises(readfile.Refused, readfile.read, fifo, 10)),
            daemon=True)
        reader.start()
        reader.join(10)
        self.assertFalse(reader.is_alive(), 'blocked on a FIFO')
        self.assertEqual('special', found[0].what)

    def test_a_directory_and_a_missing_file(self):
        e = self.assertRaises(readfile.Refused, readfile.read, self.tmp, 10)
        self.assertEqual('directory', e.what)
        self.assertRaises(FileNotFoundError, readfile.read,
                          os.path.join(self.tmp, 'none'), 10)
