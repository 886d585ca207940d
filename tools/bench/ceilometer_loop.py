#!/usr/bin/env python3
"""Run by memstats_poll.py in a virtualenv holding ceilometer==27.0.0 and
libvirt-python: time Ceilometer's libvirt inspector as its compute agent
polls, one inspect_instance() per instance, over the guests whose UUIDs
are given, on URI. Prints {"median": seconds, "each": [...]} as JSON.

    VENV/bin/python ceilometer_loop.py URI REPEAT UUID ...

Upstream's code is run, never copied.
"""

import json
import statistics
import sys
import time

from ceilometer import service
from ceilometer.compute.virt.libvirt import inspector as libvirt_inspector


class Instance:
    """What the inspector reads of a Nova instance: its id (UUID)."""

    def __init__(self, uuid):
        self.id = uuid
        self.name = uuid


def main(argv):
    uri, repeat, uuids = argv[0], int(argv[1]), argv[2:]
    conf = service.prepare_service(argv=[], config_files=[])
    conf.set_override('libvirt_uri', uri)
    inspector = libvirt_inspector.LibvirtInspector(conf)
    instances = [Instance(uuid) for uuid in uuids]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for instance in instances:
            inspector.inspect_instance(instance)
        times.append(time.perf_counter() - start)
    print(json.dumps({'median': statistics.median(times), 'each': times}))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
