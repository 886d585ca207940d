#!/usr/bin/env python3
"""Benchmark: series per guest and per host, scrape size and time.

On libvirt's test:///default driver, with N running domains that carry
Nova's metadata (owner and flavor) and a statistics period; each guest is
given the driver's canned virDomainMemoryStats figures (all of them, as a
real guest with a balloon driver reports: test:///default's bulk call
returns none). For N in 50, 200 and 1,000 (or the Ns given) it prints:

* series: samples a guest has (the state set included), the host-level
  ones, and per family;
* size: the body Prometheus asks for (OpenMetrics), the text format, and
  gzip level 1 as the exporter sends it;
* time: a poll, building the families, encoding the body and gzip: what a
  scrape costs the exporter (medians);
* the fleet: series of 1,000 hosts with 50 guests each, with every family
  and with the families a large fleet may drop (exporter.rst, "A fleet").

    .venv/bin/python tools/bench/exporter_cardinality.py [N ...]

Run by hand; results are recorded in doc/source/admin/exporter.rst.
"""

import collections
import gzip
import sys

from memstats_poll import median_time

from nova.exporter import encoding
from nova.exporter import metrics
from nova.virt.libvirt import driver as libvirt_driver
from nova.virt.libvirt import host as libvirt_host

# What Prometheus servers ask for first.
OPENMETRICS = 'application/openmetrics-text;version=1.0.0'

DOMAIN_XML = """<domain type='test'>
  <name>card-{index}</name>
  <memory unit='KiB'>262144</memory>
  <metadata>
    <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
      <nova:name>server-{index}</nova:name>
      <nova:flavor name="m1.small"><nova:memory>256</nova:memory>
        <nova:vcpus>1</nova:vcpus></nova:flavor>
      <nova:owner>
        <nova:user uuid="u-{index}">user-{index}</nova:user>
        <nova:project uuid="p-{project}">project-{project}</nova:project>
      </nova:owner>
    </nova:instance>
  </metadata>
  <os><type>hvm</type></os>
  <devices><memballoon model='virtio'><stats period='10'/></memballoon>
  </devices>
</domain>"""
# Families a large fleet may drop at scrape time (metric_relabel_configs
# in exporter-fleet-scrape.yml): what no rule, alert or dashboard reads;
# then also what only the host dashboard reads.
DROPPABLE = ('libvirt_domain_memory_stats_minor_fault',
             'libvirt_domain_memory_stats_disk_caches_bytes',
             'libvirt_domain_memory_stats_maximum_bytes')
HOST_DASHBOARD_ONLY = (
    'libvirt_domain_memory_stats_last_update_timestamp_seconds',
    'libvirt_domain_memory_stats_rss_bytes',
    'libvirt_domain_memory_stats_used_percent')


def bench(n: int, repeat: int = 10) -> dict:
    host = libvirt_host.Host('test:///default')
    conn = host.connect()
    for index in range(n):
        conn.createXML(DOMAIN_XML.format(index=index, project=index % 7), 0)
    try:
        # as the exporter's: each guest told its wanted period and free
        # page reporting
        collector = libvirt_driver.LibvirtDriver(
            host=host).memory_stats_collector()
        collector.collect()  # warm the XML cache
        canned = dict(conn.lookupByName('card-0').memoryStats(),
                      maximum=262144)

        def poll():
            rows = collector.collect()
            for row in rows:
                row.raw = canned
            return rows
        rows = poll()
        kept = {}
        found = metrics.families(rows, kept) + metrics.host_families(
            True, 0.01) + [metrics.build_info('0.0.0')]
        # Ours only: test:///default has a domain of its own, "test".
        per_family = collections.Counter()
        for family in found:
            per_family[family.name] += sum(
                1 for sample in family.samples
                if 'domain' not in sample.labels or
                sample.labels['domain'].startswith('card-'))
        guest_series = sum(v for k, v in per_family.items()
                           if k.startswith('libvirt_domain_')) / n
        host_series = sum(v for k, v in per_family.items()
                          if not k.startswith('libvirt_domain_'))
        om = encoding.encode(found, encoding.negotiate(OPENMETRICS))
        text = encoding.encode(found, encoding.negotiate(''))
        zipped = gzip.compress(om, compresslevel=1)
        as_prometheus = encoding.negotiate(OPENMETRICS, 'gzip')

        texts = {}

        def scrape():  # as the exporter's app: label sets kept
            families = metrics.families(poll(), kept) + \
                metrics.host_families(True, 0.01)
            encoding.encode(families, as_prometheus, (), texts)
        return {
            'n': n, 'guest_series': guest_series, 'host_series': host_series,
            'per_family': per_family, 'openmetrics': len(om),
            'text': len(text), 'gzip': len(zipped),
            'poll': median_time(poll, repeat),
            'scrape': median_time(scrape, repeat),
        }
    finally:
        for domain in conn.listAllDomains(0):
            if domain.name().startswith('card-'):
                domain.destroy()
        host.close()






def main() -> None:
    ns = [int(a) for a in sys.argv[1:]] or [50, 200, 1000]
    results = [bench(n) for n in ns]
    first = results[0]
    print('series a guest, by family:')
    for name, count in sorted(first['per_family'].items()):
        if 'domain' in name:
            print(f'  {name}: {count / first["n"]:g}')
        else:
            print(f'  {name}: {count} (a host)')
    print(f'{"N":>6} {"series/guest":>12} {"host":>5} {"OpenMetrics":>12} '
          f'{"text":>10} {"gzip":>9} {"poll ms":>8} {"scrape ms":>9}')
    for r in results:
        print(f'{r["n"]:>6} {r["guest_series"]:>12g} {r["host_series"]:>5} '
              f'{r["openmetrics"]:>12,} {r["text"]:>10,} {r["gzip"]:>9,} '
              f'{r["poll"] * 1e3:>8.2f} {r["scrape"] * 1e3:>9.2f}')
    per_guest = first['guest_series']

    def less(names):
        return per_guest - sum(first['per_family'][name]
                               for name in names) / first['n']
    for label, series in (
            ('every family', per_guest),
            ('less what nothing reads', less(DROPPABLE)),
            ('less that and what only the host dashboard reads',
             less(DROPPABLE + HOST_DASHBOARD_ONLY))):
        total = 1000 * (50 * series + first['host_series'])
        print(f'1,000 hosts x 50 guests, {label}: {series:g} series a '
              f'guest, {total:,.0f} series')


if __name__ == '__main__':
    main()
