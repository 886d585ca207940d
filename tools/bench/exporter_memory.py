#!/usr/bin/env python3
"""Benchmark: the exporter's resident memory under steady scrapes.

Runs ``nova-libvirt-exporter`` as an operator does, a process of its own
with a configuration file, in its default configuration, scraped over
HTTP by two clients once a second each (an HA pair of Prometheus servers,
here threads of this process), for MINUTES, and prints the exporter's
resident memory (VmRSS), threads and open files every minute.

    .venv/bin/python tools/bench/exporter_memory.py N MINUTES
    tini -s -- .venv/bin/python tools/bench/exporter_memory.py N MINUTES \
        --qemu [--uri qemu:///system]

By default it serves N running domains of libvirt's test driver (a node
file of its own, canned figures); ``--qemu`` boots N real guests instead
(as memstats_poll.py --qemu does, on ``--uri`` or an embedded root: an
embedded root is held by one process, so use a libvirtd) and removes them
afterwards.

Run by hand; results are recorded in
doc/source/contributor/benchmarks.rst.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import psutil

XML = ("<domain type='test'><name>mem-{}</name><memory>262144</memory>"
       "<os><type>hvm</type></os><devices><memballoon model='virtio'>"
       "<stats period='10'/></memballoon></devices></domain>")


def status(pid: int) -> dict:
    proc = psutil.Process(pid)
    return {'rss': f'{proc.memory_info().rss // 1024} kB',
            'threads': str(proc.num_threads()), 'fds': proc.num_fds()}


@contextlib.contextmanager
def test_driver(n: int):
    """The URI of a test driver node file with N running domains."""
    with tempfile.TemporaryDirectory(prefix='nlv-mem-') as work:
        node = os.path.join(work, 'node.xml')
        with open(node, 'w') as f:
            f.write('<node>' + ''.join(XML.format(i) for i in range(n)) +
                    '</node>')
        yield f'test://{node}', 'test driver domains'


@contextlib.contextmanager
def real_guests(n: int, uri: str):
    from memstats_poll import booted_guests
    with booted_guests(n, uri) as drv:
        yield drv.host.uri, f'real guests on {uri}'
        drv.host.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def main(argv) -> int:
    n, minutes = int(argv[0]), float(argv[1])
    uri = argv[argv.index('--uri') + 1] if '--uri' in argv else ''
    guests = real_guests(n, uri) if '--qemu' in argv else test_driver(n)
    with guests as (connection_uri, what), \
            tempfile.TemporaryDirectory(prefix='nlv-mem-conf-') as work:
        port = free_port()
        conf = os.path.join(work, 'exporter.conf')
        with open(conf, 'w') as f:
            f.write(f'[DEFAULT]\nstate_path = {work}\n'
                    f'[libvirt]\nconnection_uri = {connection_uri}\n'
                    f'[exporter]\nlisten_address = 127.0.0.1\n'
                    f'listen_port = {port}\n')
        exporter = subprocess.Popen(
            [os.path.join(sys.prefix, 'bin', 'nova-libvirt-exporter'),
             '--config-file', conf], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        url = f'http://127.0.0.1:{port}/metrics'
        stop = threading.Event()
        scrapes, failures = [], []

        def scraper():
            while not stop.is_set():
                start = time.monotonic()
                try:
                    with urllib.request.urlopen(url, timeout=30) as r:
                        r.read()
                    scrapes.append(time.monotonic() - start)
                except OSError as e:
                    failures.append(e)
                stop.wait(max(0, 1 - (time.monotonic() - start)))
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(url, timeout=30).read()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            threads = [threading.Thread(target=scraper, daemon=True)
                       for _ in range(2)]
            for thread in threads:
                thread.start()
            print(f'{n} {what}, the exporter (pid {exporter.pid}) in its '
                  'default configuration, two scrapers at 1/s', flush=True)
            start = time.monotonic()
            minute = 0
            while minute <= minutes:
                now = status(exporter.pid)
                slowest = max(scrapes[-120:], default=0)
                print(f'{minute:5.0f} min  VmRSS {now["rss"]:>10}  threads '
                      f'{now["threads"]:>3}  fds {now["fds"]:>3}  scrapes '
                      f'{len(scrapes)} (failed {len(failures)}, slowest '
                      f'of the last 120 {slowest * 1e3:.0f} ms)',
                      flush=True)
                minute += 1
                if minute <= minutes:
                    stop.wait(max(0, start + minute * 60 -
                                  time.monotonic()))
        finally:
            stop.set()
            exporter.send_signal(signal.SIGTERM)
            try:
                exporter.wait(10)
            except subprocess.TimeoutExpired:
                exporter.kill()
                exporter.wait()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
