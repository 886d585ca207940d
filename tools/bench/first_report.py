#!/usr/bin/env python3
"""Benchmark: how long a freshly started guest takes to report.

A guest that has never reported is ``starting`` for a grace period after
its QEMU started ([libvirt] mem_stats_start_grace_seconds), then
``no-guest-driver``. This measures what the grace must cover: from the
moment the guest's QEMU process started (read from /proc, as the
collector reads it) to the first report of its balloon driver
(``last_update`` above 0), for real test guests (virt_type qemu: software
emulation, the slowest boot), at periods 2 and 10, alone and several
booted at once. Polls every 0.25 s.

    tini -s -- .venv/bin/python tools/bench/first_report.py \
        [--rounds 3] [--together 4] [--uri URI]

Run by hand; results are recorded in
doc/source/contributor/benchmarks.rst.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

from nova import testimage
import nova.conf
from nova.objects import instance as instance_obj
from nova.virt.libvirt import driver as libvirt_driver
from nova.virt.libvirt import embed
from nova.virt.libvirt import memstats
from nova.virt.libvirt import qemu_process

CONF = nova.conf.CONF
# Longest wait for one first report.
GIVE_UP = 300


def _boot_and_time(drv, names: list[str], run_dir: str | None) -> list:
    """Seconds from each guest's QEMU start to its first report."""
    image = testimage.get_images(testimage.DEFAULT_CACHE)['balloon']
    for name in names:
        drv.spawn(instance_obj.Instance(name, memory_mb=128),
                  image.image_meta())
    started = {name: qemu_process.started_at(run_dir, name) or time.time()
               for name in names}
    first = {}
    collector = memstats.MemoryStatsCollector(drv.host)
    deadline = time.monotonic() + GIVE_UP
    while len(first) < len(names) and time.monotonic() < deadline:
        for row in collector.collect([n for n in names if n not in first]):
            if row.raw.get('last_update'):
                first[row.name] = time.time() - started[row.name]
        time.sleep(0.25)
    for name in names:
        drv.destroy(name)
    missing = [n for n in names if n not in first]
    if missing:
        raise RuntimeError(f'no report within {GIVE_UP}s: {missing}')
    return [first[n] for n in names]


def main(argv) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--together', type=int, default=4)
    parser.add_argument('--uri', default='')
    args = parser.parse_args(argv)
    state = tempfile.mkdtemp(prefix='nlv-bench-', dir='/tmp')
    os.chmod(state, 0o755)
    CONF([], default_config_files=[])
    CONF.set_override('state_path', state)
    CONF.set_override('instances_path', state + '/instances')
    CONF.set_override('virt_type', 'qemu', 'libvirt')
    CONF.set_override('connection_uri', args.uri, 'libvirt')
    drv = libvirt_driver.LibvirtDriver()
    uri = drv.connection[0]
    run_dir = qemu_process.state_dir(uri, embed.embed_root_of(uri))
    print(f'first report after QEMU start, virt_type qemu, on {uri}; '
          'seconds (min / median / max)')
    try:
        for period in (2, 10):
            CONF.set_override('mem_stats_period_seconds', period, 'libvirt')
            for together in (1, args.together):
                times = []
                for r in range(args.rounds):
                    names = [f'bench-first-{period}-{together}-{r}-{i}'
                             for i in range(together)]
                    times += _boot_and_time(drv, names, run_dir)
                print(f'  period {period:2d}s, {together} booted at once: '
                      f'{min(times):5.1f} / {statistics.median(times):5.1f}'
                      f' / {max(times):5.1f}  ({len(times)} boots)',
                      flush=True)
    finally:
        drv.host.close()
        shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
