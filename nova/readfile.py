"""A file an operator names, read with a bound: the one way of reading one.

Opened non-blocking and then looked at (fstat), in that order: a FIFO or a
device swapped in for the file between a look and an open can never block
the read, and is refused unread, as is a file over the bound (checked
again while reading, should it grow). Used for nova.conf files (nova/config.py)
and the exporter's web configuration and the files it names
(nova/exporter/web/yamlread.py), each saying what it refused in its own
one-line error.
"""

import os
import stat


class Refused(Exception):
    """A file not read: ``what`` is ``directory``, ``special`` (a FIFO,
    device or socket) or ``too-large`` (``size`` bytes, over ``limit``).
    """

    def __init__(self, what: str, size: int = 0, limit: int = 0):
        super().__init__(what)
        self.what, self.size, self.limit = what, size, limit


def read(path: str, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit``; Refused
    otherwise, OSError where it cannot be opened or read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise Refused('directory')
        if not stat.S_ISREG(st.st_mode):
            raise Refused('special')
        if st.st_size > limit:
            raise Refused('too-large', st.st_size, limit)
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:  # it grew while read
                raise Refused('too-large', size, limit)
            chunks.append(chunk)
        return b''.join(chunks)
    finally:
        os.close(fd)
