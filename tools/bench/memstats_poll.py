#!/usr/bin/env python3
"""Benchmark: one memory-statistics poll of N running guests.

On libvirt's test:///default driver (canned figures, no QEMU) it starts N
transient domains and times, per poll:

* raw:        the bulk call alone, virConnectGetAllDomainStats(BALLOON|STATE)
* collector:  MemoryStatsCollector.collect() with a warm XML cache
* cold:       the collector's first poll (reads each domain's XML once)
* per-domain: one virDomainMemoryStats() call per domain, as telemetry does

and counts the libvirt calls each makes. A regression guard only (the
collector is judged on real guests, --qemu): the warm collector within 2.5x
of the raw call at N = 1000, and one libvirt call per poll whatever N.

    .venv/bin/python tools/bench/memstats_poll.py [N ...]
    tini -s -- .venv/bin/python tools/bench/memstats_poll.py --qemu N[,N...] \
        [--uri qemu:///system] [--workers 0,1,4] [--ceilometer VENV]

``--qemu N`` polls N real test guests (virt_type qemu, period 2) on an
embedded QEMU driver in a temporary root instead, or with ``--uri`` on a
libvirtd (guests named bench-qemu-*, removed afterwards): there the bulk
call asks each QEMU for its balloon figures, as on a real host.
``--workers`` times the collector with each number of parallel chunks
([libvirt] mem_stats_poll_workers; 0, the default, chooses from the guests
and cores) against the single raw call. Each N also prints what one raw
call costs the whole machine in CPU time, and so the floor no parallel
split can beat on this machine's cores.
``--ceilometer VENV`` also times Ceilometer 27's libvirt inspector, one
inspect_instance() per guest as its compute agent polls (ceilometer_loop.py,
run in VENV: ceilometer==27.0.0 and libvirt-python from PyPI), between two
timings of our default poll.

Run by hand; results are recorded in
doc/source/contributor/benchmarks.rst.
"""

import contextlib
import os
import statistics
import sys
import time

from nova.virt.libvirt import api
from nova.virt.libvirt import connection
from nova.virt.libvirt import host as libvirt_host
from nova.virt.libvirt import memstats
from nova.virt.libvirt import stats_poll

DOMAIN_XML = """<domain type='test'>
  <name>bench-{index}</name>
  <memory unit='KiB'>262144</memory>
  <os><type>hvm</type></os>
  <devices><memballoon model='virtio'><stats period='10'/></memballoon>
  </devices>
</domain>"""


class Counting:
    """Wraps a libvirt object; counts calls, wrapping domains it returns."""

    def __init__(self, target, counter):
        self._target, self._counter = target, counter

    def __getattr__(self, name):
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            # name(), UUIDString() and ID() read the local object: no call.
            if name not in ('name', 'UUIDString', 'ID'):
                self._counter[name] = self._counter.get(name, 0) + 1
            return self._wrap(attr(*args, **kwargs))
        return call

    def _wrap(self, value):
        if isinstance(value, api.module().virDomain):
            return Counting(value, self._counter)
        if isinstance(value, list):
            return [self._wrap(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self._wrap(v) for v in value)
        return value


class CountingHost(libvirt_host.Host):
    """A Host whose every connection counts its calls (they are opened
    through its opener: Host.connect is not the poll's way in).
    """

    def __init__(self, uri):
        self.calls = {}
        super().__init__(uri, opener=lambda uri, read_only: Counting(
            connection.open_libvirt(uri, read_only), self.calls))


def median_time(poll, repeat: int) -> float:
    """Median wall time of ``repeat`` calls of ``poll``, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        poll()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _paired(polls: dict, repeat: int) -> dict:
    """Median times of the raw call and the collector, timed alternately,
    and the median of their ratio within each pair: this machine's speed
    drifts by tens of percent over seconds, and a ratio of two batches
    timed apart measured the drift as much as the collector.

    Each is timed twice over: wall time, and the process's CPU time (all
    threads), which leaves out the time this shared virtual machine was
    not running at all and so varies far less from run to run.
    """
    times = {(who, clock): [] for who in ('raw', 'collector')
             for clock in ('wall', 'cpu')}
    for _ in range(repeat):
        for who in ('raw', 'collector'):
            wall, cpu = time.perf_counter(), time.process_time()
            polls[who]()
            times[who, 'cpu'].append(time.process_time() - cpu)
            times[who, 'wall'].append(time.perf_counter() - wall)
    result = {}
    for clock in ('wall', 'cpu'):
        raw, collector = times['raw', clock], times['collector', clock]
        suffix = '' if clock == 'wall' else '_cpu'
        result['raw' + suffix] = statistics.median(raw)
        result['collector' + suffix] = statistics.median(collector)
        result['ratio' + suffix] = statistics.median(
            c / r for r, c in zip(raw, collector))
    return result


def _calls_of(host, poll) -> int:
    host.calls.clear()
    poll()
    return sum(host.calls.values())


def _polls(host):
    """The four ways to poll, on ``host``'s connection."""
    conn = host.connect()
    domains = conn.listAllDomains(api.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
    kinds = api.VIR_DOMAIN_STATS_BALLOON | api.VIR_DOMAIN_STATS_STATE
    return {
        'raw': lambda: conn.getAllDomainStats(kinds),
        'collector': memstats.MemoryStatsCollector(host).collect,
        'per_domain': lambda: [d.memoryStats() for d in domains],
    }


def bench(n: int, repeat: int) -> dict:
    # Timed on a plain Host; calls counted on a second, counting one (its
    # proxy would slow the timed polls down).
    host = libvirt_host.Host('test:///default')
    conn = host.connect()
    for index in range(n):
        conn.createXML(DOMAIN_XML.format(index=index), 0)
    polls = _polls(host)
    start = time.perf_counter()
    polls['collector']()
    result = {'n': n, 'cold': time.perf_counter() - start}
    result.update(_paired(polls, repeat))
    result['per_domain'] = median_time(polls['per_domain'], repeat)

    counting = CountingHost('test:///default')
    counted = _polls(counting)
    result['cold_calls'] = _calls_of(counting, counted['collector'])
    for name, poll in counted.items():
        result[name + '_calls'] = _calls_of(counting, poll)
    counting.close()

    for domain in conn.listAllDomains(0):
        if domain.name().startswith('bench-'):
            domain.destroy()
    host.close()
    return result


@contextlib.contextmanager
def booted_guests(n: int, uri: str = ''):
    """N real test guests (virt_type qemu, period 2) on ``uri`` (default
    an embedded root of its own), booted and reporting: yields the
    LibvirtDriver; removes them afterwards. On a daemon each guest gets its
    own copy of the test image (many guests sharing one kernel file fail
    to start there: "Setting different DAC user or group").
    """
    import shutil
    import tempfile

    from nova import testimage
    import nova.conf
    from nova.objects import image_meta as image_meta_obj
    from nova.objects import instance as instance_obj
    from nova.virt.libvirt import driver as libvirt_driver

    conf = nova.conf.CONF
    state = tempfile.mkdtemp(prefix='nlv-bench-', dir='/tmp')
    os.chmod(state, 0o755)  # the daemon's QEMU user reads the images
    conf([], default_config_files=[])
    conf.set_override('state_path', state)
    conf.set_override('instances_path', state + '/instances')
    conf.set_override('virt_type', 'qemu', 'libvirt')
    conf.set_override('connection_uri', uri, 'libvirt')
    conf.set_override('mem_stats_period_seconds', 2, 'libvirt')
    image = testimage.get_images(testimage.DEFAULT_CACHE)['balloon']
    drv = libvirt_driver.LibvirtDriver()
    names = [f'bench-qemu-{i}' for i in range(n)]
    try:
        for name in names:
            meta = image.image_meta()
            if uri:
                paths = []
                for path in (image.kernel_path, image.ramdisk_path):
                    copy = os.path.join(state, f'{name}-' +
                                        os.path.basename(path))
                    shutil.copy(path, copy)
                    os.chmod(copy, 0o644)
                    paths.append(copy)
                meta = image_meta_obj.ImageMeta(
                    kernel_path=paths[0], ramdisk_path=paths[1],
                    os_command_line=image.os_command_line)
            drv.spawn(instance_obj.Instance(name, memory_mb=128), meta)
        # booted and reporting: many TCG guests on few cores take a while
        waiting = memstats.MemoryStatsCollector(drv.host)
        deadline = time.monotonic() + 60 + 3 * n
        while time.monotonic() < deadline and any(
                r.stats_state != 'ok' for r in waiting.collect()):
            time.sleep(1)
        yield drv
    finally:
        for name in names:
            try:
                drv.destroy(name)
            except Exception as e:  # report, keep cleaning up
                print(f'could not remove {name}: {e}', file=sys.stderr)
        drv.host.close()
        shutil.rmtree(state, ignore_errors=True)


def ceilometer_loop(venv: str, uri: str, uuids: list,
                    repeat: int) -> float:
    """Median seconds of Ceilometer 27's per-instance loop over ``uuids``,
    run in ``venv`` (ceilometer==27.0.0 and libvirt-python).
    """
    import json
    import subprocess

    script = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          'ceilometer_loop.py')
    out = subprocess.run(
        [os.path.join(os.path.abspath(venv), 'bin', 'python'), script,
         uri, str(repeat),
         *uuids], capture_output=True, text=True, check=True, cwd='/')
    return json.loads(out.stdout.strip().splitlines()[-1])['median']


def _busy_cpu() -> float:
    """CPU seconds this machine has spent busy (all processes), from
    /proc/stat: user, nice, system, irq and softirq; not idle, iowait or
    steal (time the hypervisor gave to someone else).
    """
    with open('/proc/stat') as f:
        fields = [int(x) for x in f.readline().split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / os.sysconf(
        'SC_CLK_TCK')


def cpu_floor(poll, seconds: float = 4.0) -> dict:
    """What one ``poll`` costs the whole machine in CPU time (QEMU's
    answers, libvirtd, this process), the machine's background load taken
    out, and so the shortest wall time any split of it could reach on this
    machine's cores: the physical floor of a parallel poll.
    """
    cores = os.cpu_count() or 1
    start, busy = time.monotonic(), _busy_cpu()
    time.sleep(seconds / 2)
    background = (_busy_cpu() - busy) / (time.monotonic() - start)
    start, busy, calls = time.monotonic(), _busy_cpu(), 0
    while time.monotonic() - start < seconds:
        poll()
        calls += 1
    elapsed = time.monotonic() - start
    per_call = (_busy_cpu() - busy - background * elapsed) / calls
    return {'cpu': per_call, 'wall': elapsed / calls,
            'floor': per_call / (cores - background), 'cores': cores,
            'background': background}


def bench_qemu(n: int, repeat: int = 20, uri: str = '',
               workers: tuple = (0,), ceilometer: str = '') -> dict:
    """The same polls on N real guests (on ``uri``), the collector timed
    with each of ``workers`` parallel chunks (0: the default, chosen from
    the guests and cores); with ``ceilometer`` (a virtualenv),
    Ceilometer's per-instance loop too, between two timings of our
    default poll.
    """
    hosts = []
    with booted_guests(n, uri) as drv:
        try:
            polls = _polls(drv.host)
            start = time.perf_counter()
            polls['collector']()
            result = {'n': n, 'cold': time.perf_counter() - start,
                      'by_workers': {},
                      'auto': stats_poll.auto_workers(n),
                      'floor': cpu_floor(polls['raw'])}
            for count in workers:
                host = libvirt_host.Host(drv.host.uri, stats_workers=count)
                hosts.append(host)
                collector = memstats.MemoryStatsCollector(host)
                collector.collect()  # its XML cache warm
                collector.collect()  # its count known: the automatic choice
                result['by_workers'][count] = _paired(
                    {'raw': polls['raw'], 'collector': collector.collect},
                    repeat)
            result['per_domain'] = median_time(polls['per_domain'], repeat)
            result['states'] = {r.stats_state
                                for r in polls['collector']()}
            if ceilometer:
                auto = libvirt_host.Host(drv.host.uri, stats_workers=0)
                hosts.append(auto)
                ours = memstats.MemoryStatsCollector(auto)
                ours.collect()
                ours.collect()  # its count known: the automatic choice
                before = median_time(ours.collect, repeat)
                theirs = ceilometer_loop(
                    ceilometer, drv.host.uri,
                    [r.uuid for r in ours.collect()], repeat)
                after = median_time(ours.collect, repeat)
                result['default_poll'] = (before + after) / 2
                result['ceilometer'] = theirs
            return result
        finally:
            for host in hosts:
                host.close()


def _print_qemu(r: dict, where: str) -> None:
    f = r['floor']
    print(f'{r["n"]} real guests (128 MiB) on {where} (TCG), states '
          f'{sorted(r["states"])}, cold poll {r["cold"] * 1e3:.1f} ms, '
          f'per-domain {r["per_domain"] * 1e3:.2f} ms; the default '
          f'configuration splits a poll into {r["auto"]} call(s)')
    print(f'  one raw call costs the machine {f["cpu"] * 1e3:.1f} ms of CPU '
          f'(wall {f["wall"] * 1e3:.1f} ms; background load '
          f'{f["background"]:.2f} of {f["cores"]} cores): no split can '
          f'beat {f["floor"] * 1e3:.1f} ms, '
          f'{f["floor"] / f["wall"]:.2f} of the raw call')
    print('  median of 20 polls, raw and collector timed alternately:')
    for count, t in r['by_workers'].items():
        label = 'default' if count == 0 else f'workers {count}'
        print(f'  {label}: raw {t["raw"] * 1e3:.2f} ms, '
              f'collector {t["collector"] * 1e3:.2f} ms, ratio '
              f'{t["ratio"]:.2f} (CPU time {t["ratio_cpu"]:.2f})')
    if 'ceilometer' in r:
        print(f'  Ceilometer 27 per-instance loop '
              f'{r["ceilometer"] * 1e3:.1f} ms, our default poll '
              f'{r["default_poll"] * 1e3:.1f} ms: Ceilometer takes '
              f'{r["ceilometer"] / r["default_poll"]:.1f}x')


def main(argv) -> int:
    if argv[:1] == ['--qemu']:
        # --qemu N[,N...] [--uri URI] [--workers 0,1,4] [--ceilometer VENV]
        sizes = ([int(x) for x in argv[1].split(',')]
                 if len(argv) > 1 and argv[1][:1].isdigit() else [4])
        uri = argv[argv.index('--uri') + 1] if '--uri' in argv else ''
        workers = tuple(int(w) for w in argv[argv.index('--workers') + 1]
                        .split(',')) if '--workers' in argv else (0,)
        ceilometer = (argv[argv.index('--ceilometer') + 1]
                      if '--ceilometer' in argv else '')
        for n in sizes:
            _print_qemu(bench_qemu(n, uri=uri, workers=workers,
                                   ceilometer=ceilometer),
                        uri or 'an embedded QEMU root')
            sys.stdout.flush()
        return 0
    sizes = [int(a) for a in argv] or [10, 100, 1000]
    print(f'libvirt {api.module().getVersion()}, test:///default, median of '
          'repeated polls (the cold poll runs once; ratio: median of '
          'raw/collector pairs timed alternately)')
    print(f'{"N":>5}  {"raw ms":>8}  {"collector ms":>12}  {"ratio":>5}  '
          f'{"cpu ratio":>9}  {"cold ms":>8}  {"per-domain ms":>13}  calls: '
          'raw / collector / cold / per-domain')
    failed = False
    for n in sizes:
        r = bench(n, repeat=41 if n <= 100 else 21)
        print(f'{n:>5}  {r["raw"] * 1e3:8.2f}  {r["collector"] * 1e3:12.2f}  '
              f'{r["ratio"]:5.2f}  {r["ratio_cpu"]:9.2f}  '
              f'{r["cold"] * 1e3:8.1f}  '
              f'{r["per_domain"] * 1e3:13.2f}  {r["raw_calls"]} / '
              f'{r["collector_calls"]} / {r["cold_calls"]} / '
              f'{r["per_domain_calls"]}')
        if r['collector_calls'] != 1 or (
                n >= 1000 and max(r['ratio'], r['ratio_cpu']) > 2.5):
            failed = True
    print('regression guard: collector within 2.5x of raw at N=1000 (wall '
          'and CPU time), one call per poll: ' +
          ('MISSED' if failed else 'met'))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
