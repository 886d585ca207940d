#!/usr/bin/env python3
"""Benchmark: the exporter's resident memory under steady scrapes.

Serves N running domains of libvirt's test driver (a node file of its own,
canned figures) with the exporter service in this process, in its default
configuration, scraped over HTTP by two clients once a second each (an HA
pair of Prometheus servers) for MINUTES, and prints the process's resident
memory (VmRSS) and thread count every minute.

    .venv/bin/python tools/bench/exporter_memory.py N MINUTES

Run by hand; results are recorded in doc/source/admin/exporter.rst.
"""

import os
import sys
import tempfile
import threading
import time
import urllib.request

import nova.virt.libvirt  # noqa: F401  routes libvirt's log before it loads

import nova.conf  # noqa: E402
from nova.exporter import service  # noqa: E402
from nova.virt.libvirt import driver as libvirt_driver  # noqa: E402

XML = ("<domain type='test'><name>mem-{}</name><memory>262144</memory>"
       "<os><type>hvm</type></os><devices><memballoon model='virtio'>"
       "<stats period='10'/></memballoon></devices></domain>")


def status(field: str) -> str:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return line.split(':', 1)[1].strip()
    return '?'


def main(argv) -> int:
    n, minutes = int(argv[0]), float(argv[1])
    work = tempfile.mkdtemp(prefix='nlv-mem-')
    node = os.path.join(work, 'node.xml')
    with open(node, 'w') as f:
        f.write('<node>' + ''.join(XML.format(i) for i in range(n)) +
                '</node>')
    conf = nova.conf.CONF
    conf([], default_config_files=[])
    conf.set_override('connection_uri', f'test://{node}', 'libvirt')
    conf.set_override('listen_port', 0, 'exporter')
    svc = service.ExporterService(libvirt_driver.LibvirtDriver(), conf)
    svc.start()
    url = f'http://127.0.0.1:{svc.port}/metrics'
    stop = threading.Event()
    scrapes = []

    def scraper():
        while not stop.is_set():
            start = time.monotonic()
            with urllib.request.urlopen(url, timeout=30) as r:
                r.read()
            scrapes.append(time.monotonic() - start)
            stop.wait(max(0, 1 - (time.monotonic() - start)))
    threads = [threading.Thread(target=scraper, daemon=True)
               for _ in range(2)]
    for thread in threads:
        thread.start()
    print(f'{n} domains (test driver), two scrapers at 1/s, default '
          'configuration', flush=True)
    start = time.monotonic()
    try:
        minute = 0
        while minute <= minutes:
            print(f'{minute:5.0f} min  VmRSS {status("VmRSS"):>10}  '
                  f'threads {status("Threads"):>3}  scrapes '
                  f'{len(scrapes)}', flush=True)
            minute += 1
            stop.wait(max(0, start + minute * 60 - time.monotonic()))
    finally:
        stop.set()
        for thread in threads:
            thread.join(35)
        svc.stop()
        os.unlink(node)
        os.rmdir(work)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
