#!/usr/bin/env python3
"""Benchmark: the cost of one nova-libvirt-exporter scrape, in three parts.

On libvirt's test:///default driver, with N transient running domains:

* poll:      MemoryStatsCollector.collect() (warm: one libvirt call)
* families:  nova.exporter.metrics.families() of the poll's rows, with
             the state-set samples kept from the previous scrape as the
             exporter keeps them ("first": without, as at the first scrape)
* text:      prometheus_client's generate_latest() of those families

test:///default's bulk call returns no balloon figures, so before timing the
families each row is given the driver's canned virDomainMemoryStats figures
(all of them, as a real guest with a balloon driver reports), making about
18 series a guest, the state set included. Target: our part (poll +
families) at most twice the poll.

    .venv/bin/python tools/bench/exporter_scrape.py [N ...]
    tini -s -- .venv/bin/python tools/bench/exporter_scrape.py --qemu N \
        [--uri qemu:///system]

``--qemu N`` serves N real guests over HTTP in the exporter's default
configuration, and times a poll against a scrape by curl (alternately),
then bursts of 50 concurrent scrapes (curl --parallel) against one.

Run by hand; results are recorded in
doc/source/contributor/benchmarks.rst.
"""

import statistics
import sys
import time

from memstats_poll import DOMAIN_XML
from memstats_poll import median_time
import prometheus_client
from prometheus_client import registry as prom_registry

from nova.exporter import metrics
from nova.virt.libvirt import host as libvirt_host
from nova.virt.libvirt import memstats


class _Fixed(prom_registry.Collector):
    def __init__(self):
        self.found = []

    def collect(self):
        return self.found


def bench(n: int, repeat: int) -> dict:
    host = libvirt_host.Host('test:///default')
    conn = host.connect()
    for index in range(n):
        conn.createXML(DOMAIN_XML.format(index=index), 0)
    try:
        collector = memstats.MemoryStatsCollector(host)
        collector.collect()  # warm the XML cache
        canned = dict(conn.lookupByName('bench-0').memoryStats(),
                      maximum=262144)
        rows = collector.collect()
        for row in rows:
            row.raw = canned
        fixed = _Fixed()
        registry = prom_registry.CollectorRegistry()
        registry.register(fixed)
        kept = {}  # as the exporter keeps it from scrape to scrape
        fixed.found = metrics.families(rows, kept)
        series = sum(len(f.samples) for f in fixed.found) / len(rows)
        result = {
            'n': n, 'series': series,
            'poll': median_time(collector.collect, repeat),
            'families': median_time(lambda: metrics.families(rows, kept),
                                repeat),
            'families_cold': median_time(lambda: metrics.families(rows),
                                     repeat),
            'text': median_time(lambda: prometheus_client.generate_latest(
                registry), repeat),
        }
    finally:
        for domain in conn.listAllDomains(0):
            if domain.name().startswith('bench-'):
                domain.destroy()
        host.close()
    return result


# What Prometheus 2.x asks for (scrape.go's acceptHeader), with gzip.
PROMETHEUS_ACCEPT = ('application/openmetrics-text;version=1.0.0,'
                     'application/openmetrics-text;version=0.0.1;q=0.75,'
                     'text/plain;version=0.0.4;q=0.5,*/*;q=0.1')


def _curl(url: str, count: int = 1) -> list[float]:
    """Seconds each of ``count`` scrapes of ``url`` took, all at once,
    by curl in a process of its own, asking what Prometheus asks (the
    OpenMetrics format, gzip) as Prometheus does (a client in
    the exporter's own process would take the GIL from the server it
    measures). curl's own clock: its start-up is not counted.
    """
    import subprocess

    argv = ['curl', '-sS', '--fail', '-w', '%{time_total}\\n',
            '-H', f'Accept: {PROMETHEUS_ACCEPT}', '--compressed']
    if count > 1:
        argv += ['-Z', '--parallel-immediate', '--parallel-max',
                 str(count)]
    for _ in range(count):
        argv += ['-o', '/dev/null', url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True,
                         timeout=120).stdout
    return [float(line) for line in out.split()]


def bench_scrapes(n: int, uri: str, repeat: int = 20,
                  concurrent: int = 50) -> dict:
    """On N real guests: a poll, a scrape over HTTP (the exporter's
    default configuration), and ``concurrent`` scrapes at once, each
    burst after a pause so that it starts a poll of its own.
    """
    from memstats_poll import booted_guests

    from nova.cmd import exporter as exporter_cmd
    import nova.conf
    from nova.virt.libvirt import driver as libvirt_driver

    with booted_guests(n, uri) as drv:
        conf = nova.conf.CONF
        conf.set_override('listen_port', 0, 'exporter')
        conf.set_override('mem_stats_poll_workers', 0, 'libvirt')
        # the exporter as its command builds it: a read-only driver of its
        # own on the same connection
        svc = exporter_cmd.build(conf, libvirt_driver.LibvirtDriver(
            read_only=True))
        sys.setswitchinterval(exporter_cmd.SWITCH_INTERVAL)  # as its main
        svc.start()
        try:
            url = f'http://127.0.0.1:{svc.port}/metrics'
            _curl(url)
            host = libvirt_host.Host(drv.host.uri, stats_workers=0)
            collector = memstats.MemoryStatsCollector(host)
            collector.collect()
            collector.collect()  # its count known: the automatic choice
            # alternately, as the poll benchmark pairs its timings
            polls, scrapes = [], []
            for _ in range(repeat):
                start = time.perf_counter()
                collector.collect()
                polls.append(time.perf_counter() - start)
                scrapes += _curl(url)
            slowest, medians, singles = [], [], []
            for _ in range(5):
                singles += _curl(url)
                time.sleep(0.2)
                took = _curl(url, concurrent)
                slowest.append(max(took))
                medians.append(statistics.median(took))
                time.sleep(0.2)
            host.close()
            return {'poll': statistics.median(polls),
                    'scrape': statistics.median(scrapes),
                    'ratio': statistics.median(
                        s / p for s, p in zip(scrapes, polls)),
                    'single': statistics.median(singles),
                    'concurrent_max': statistics.median(slowest),
                    'concurrent_median': statistics.median(medians)}
        finally:
            svc.stop()


def main(argv) -> int:
    if argv[:1] == ['--qemu']:
        # --qemu N [--uri URI]: real guests, over HTTP
        n = int(argv[1]) if len(argv) > 1 and argv[1].isdigit() else 20
        uri = argv[argv.index('--uri') + 1] if '--uri' in argv else ''
        r = bench_scrapes(n, uri)
        print(f'{n} real guests on {uri or "an embedded root"}, default '
              'configuration, scraped by curl; medians of 20 (poll and '
              'scrape alternately):')
        print(f'poll {r["poll"] * 1e3:.1f} ms, scrape over HTTP '
              f'{r["scrape"] * 1e3:.1f} ms (ratio, median of pairs: '
              f'{r["ratio"]:.2f}; target 1.2)')
        print(f'50 concurrent scrapes, median of 5 bursts: slowest '
              f'{r["concurrent_max"] * 1e3:.1f} ms, '
              f'{r["concurrent_max"] / r["single"]:.2f}x one scrape '
              f'({r["single"] * 1e3:.1f} ms) (target 2); median '
              f'{r["concurrent_median"] * 1e3:.1f} ms')
        return 0
    sizes = [int(a) for a in argv] or [10, 100, 1000]
    print('test:///default, median of repeated scrapes, milliseconds')
    print(f'{"N":>5}  {"series/guest":>12}  {"poll":>7}  {"families":>8}  '
          f'{"(first)":>8}  {"ours/poll":>9}  {"text":>7}')
    worst = 0.0
    for n in sizes:
        r = bench(n, repeat=20 if n <= 100 else 7)
        ours = (r['poll'] + r['families']) / r['poll']
        worst = max(worst, ours)
        print(f'{n:>5}  {r["series"]:>12.1f}  {r["poll"] * 1e3:7.2f}  '
              f'{r["families"] * 1e3:8.2f}  '
              f'{r["families_cold"] * 1e3:8.2f}  {ours:9.2f}  '
              f'{r["text"] * 1e3:7.2f}')
    print('target: poll + families at most 2x the poll: ' +
          ('met' if worst <= 2 else 'MISSED'))
    return 0 if worst <= 2 else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
