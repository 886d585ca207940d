#!/usr/bin/env python3
"""Benchmark: what a poll and a scrape cost as a host fills up, to
libvirt's own design point of 4,096 guests.

Two curves, each written as JSON lines and drawn into one plot:

* ``synthetic``: 100, 1,000 and 4,096 guests behind a synthetic libvirt
  at the connection seam (nova/tests/fixtures/libvirt.py's fake
  connection: the real Host, poll, collector, exporter and HTTP server
  above it; records with every balloon figure, realistic values reported
  on a 10 s cadence, Nova's metadata in each guest's XML; 1 in 20
  paused, 1 in 20 shut off, one guest's QEMU stuck). Each N runs in a
  process of its own, so that its memory is its own: the synthetic bulk
  call alone, a scrape over HTTP as Prometheus asks and as curl does
  (medians of 7), then its parts one at a time (the poll, the metric
  families, each encoding, gzip), the body's sizes and the exporter's
  peak memory (the process's, the synthetic guests' taken out).
* ``qemu``: real test guests (96 MiB, period 10) added 10 at a time on a
  libvirtd (guests named bench-scale-*, removed afterwards), up to the Ns
  given: at each N, libvirt's raw bulk call, our poll, our exporter's
  scrape and kumina's (Debian's prometheus-libvirt-exporter, which
  tools/install-deps unpacks into .venv/kumina) over HTTP, timed
  alternately, 15 rounds (medians). No guest is stuck there: libvirt's
  call, and kumina's scrape, would wait for it.

    .venv/bin/python tools/bench/scale.py

runs both (100, 1,000 and 4,096 synthetic guests; 10, 20, 40 and 60 real
ones on a libvirtd of its own, as the test suite's: root, about 12 GB of
memory, 15 minutes), writes doc/source/contributor/scale.jsonl and draws
doc/source/contributor/scale.png from it; ``--help`` says how to choose the
Ns, another libvirtd (``--uri``), Ceilometer's loop beside them, or only
the plot.

Run by hand (not in CI: CI counts the calls and the encode's work at 200
synthetic guests instead); results and the plot are recorded in
doc/source/contributor/benchmarks.rst.
"""

import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, TOP)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# What Prometheus 2.x and 3.x send with a scrape.
PROMETHEUS = {
    'Accept': 'application/openmetrics-text;version=1.0.0;q=0.5,'
              'application/openmetrics-text;version=0.0.1;q=0.4,'
              'text/plain;version=0.0.4;q=0.3,*/*;q=0.2',
    'Accept-Encoding': 'gzip'}
KUMINA = os.path.join(os.path.dirname(sys.executable), '..', 'kumina', 'usr',
                      'bin', 'prometheus-libvirt-exporter')
GUEST_XML = """<domain type='qemu'>
  <name>{name}</name><uuid>{uuid}</uuid>
  <metadata>
    <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
      <nova:name>server-{index}</nova:name>
      <nova:flavor name="m1.small"><nova:memory>512</nova:memory>
        <nova:vcpus>1</nova:vcpus></nova:flavor>
      <nova:owner>
        <nova:user uuid="u-{index}">user-{index}</nova:user>
        <nova:project uuid="p-{project}">project-{project}</nova:project>
      </nova:owner>
    </nova:instance>
  </metadata>
  <devices><memballoon model='virtio' autodeflate='on'
    freePageReporting='on'><stats period='10'/></memballoon></devices>
</domain>"""


def median(fn, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- synthetic --------------------------------------------------------------


def _rss_mb() -> float:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def synthetic_host(n: int):
    """``n`` synthetic guests (see the module's docstring): a namespace
    of the collector, the exporter's PrometheusCollector, the domains,
    ``raw()`` (the synthetic libvirt's bulk call alone, on a connection of
    its own, over every guest but the stuck one) and ``fake_mb``, the
    memory the synthetic guests take (not the exporter's).
    """
    import types

    from nova.exporter import service
    from nova.tests.fixtures import libvirt as fakelibvirt
    from nova.virt.libvirt import driver as libvirt_driver
    from nova.virt.libvirt import host as libvirt_host

    class Domain(fakelibvirt.FakeDomain):
        """A guest with every balloon figure and Nova's metadata."""

        def __init__(self, index):
            state = 3 if index % 20 == 7 else 5 if index % 20 == 13 else 1
            super().__init__(f'guest-{index:05d}', state, index + 1)
            self.index = index
            self._xml = GUEST_XML.format(
                name=self._name, index=index, project=index % 50,
                uuid=f'00000000-0000-4000-8000-{index:012d}')
            spread = index % 97
            self.figures = {
                'state.state': state, 'balloon.current': 524288,
                'balloon.maximum': 524288,
                'balloon.swap_in': 1024 * spread,
                'balloon.swap_out': 2048 * spread,
                'balloon.major_fault': 100 + spread,
                'balloon.minor_fault': 100000 + 37 * spread,
                'balloon.unused': 200000 - 1000 * spread,
                'balloon.available': 489000,
                'balloon.usable': 300000 - 1000 * spread,
                'balloon.disk_caches': 50000 + 100 * spread,
                'balloon.hugetlb_pgalloc': 0, 'balloon.hugetlb_pgfail': 0,
                'balloon.rss': 400000 + 100 * spread}

        def UUIDString(self):
            return f'00000000-0000-4000-8000-{self.index:012d}'

        def XMLDesc(self, flags=0):
            return self._xml

        def read(self, nowait):
            # the fake's job and freeze model costs 85 us a guest, far
            # above what libvirt's C code spends building a record: kept
            # for the stuck guest only, so that the bench measures ours
            if not self.thawed.is_set():
                return super().read(nowait)
            if self._state not in (1, 3):
                return {'state.state': self._state}
            # every figure, reported on the period's cadence (10 s),
            # each guest at its own phase
            now = int(time.time())
            record = dict(self.figures)
            record['balloon.last-update'] = now - (now - self.index) % 10
            return record

    class Connection(fakelibvirt.FakeConnection):
        def lookupByUUIDString(self, uuid):
            return by_uuid[uuid]

    before = _rss_mb()
    domains = [Domain(i) for i in range(n)]
    by_uuid = {d.UUIDString(): d for d in domains}
    stuck = domains[n // 2]
    stuck.freeze()  # one QEMU stuck among them
    connections = []

    def opener(uri, read_only):
        connections.append(Connection(*domains))
        return connections[-1]
    host = libvirt_host.Host('fake:///', timeout=5.0, opener=opener,
                             stats_workers=0)
    drv = libvirt_driver.LibvirtDriver(host=host)
    collector = drv.memory_stats_collector()
    exporter = service.PrometheusCollector(collector)
    # the anchor: the bulk call over the others (over the stuck one too,
    # it waits, as libvirt's does, until its QEMU answers)
    raw_conn = Connection(*(d for d in domains if d is not stuck))

    def raw():  # the fake takes any kinds: it gives balloon and state
        return raw_conn.getAllDomainStats(0, fakelibvirt.NOWAIT)
    return types.SimpleNamespace(
        collector=collector, exporter=exporter, domains=domains, raw=raw,
        fake_mb=_rss_mb() - before)


def synthetic_one(n: int) -> dict:
    """One N, in this process: see the module's docstring."""
    import gzip
    import http.client

    from nova.exporter import encoding
    from nova.exporter import metrics
    from nova.exporter import service

    host = synthetic_host(n)
    collector, domains = host.collector, host.domains
    result = {'guests': n, 'raw': median(host.raw)}
    svc = service.ExporterService(
        collector, service.Settings(listen_port=0), 'fake:///')
    svc.start()
    try:
        def scrape(headers):
            conn = http.client.HTTPConnection('127.0.0.1', svc.port,
                                              timeout=60)
            conn.request('GET', '/metrics', headers=headers)
            response = conn.getresponse()
            response.read()
            conn.close()
            assert response.status == 200, response.status
        # as Prometheus asks (OpenMetrics, gzip'd): a poll, its families,
        # one body, over HTTP
        scrape(PROMETHEUS)
        result['scrape'] = median(lambda: scrape(PROMETHEUS))
        # and as curl asks: the text format, whole
        result['scrape_plain'] = median(lambda: scrape({}))
    finally:
        svc.stop()
    # the process's peak but the synthetic guests: the exporter's own
    # (Python, its modules, its caches, a poll, its families and bodies)
    result['exporter_mb'] = round(_peak_mb() - host.fake_mb)
    # its parts, one at a time
    result['poll'] = median(collector.collect)
    rows, kept, texts = collector.collect(), {}, {}
    metrics.families(rows, kept)
    result['families'] = median(lambda: metrics.families(rows, kept))
    families = metrics.families(rows, kept)
    for name, accept in (('text', ''), ('openmetrics',
                         'application/openmetrics-text;version=1.0.0')):
        fmt = encoding.negotiate(accept)
        body = encoding.encode(families, fmt, (), texts)
        # label sets written by the previous scrape's body (as served)
        result[f'encode_{name}'] = median(
            lambda fmt=fmt: encoding.encode(families, fmt, (), texts))
        result[f'body_{name}_bytes'] = len(body)
    # a first body: every label set written
    result['encode_openmetrics_first'] = median(
        lambda: encoding.encode(families, fmt))
    zipped = encoding.negotiate(accept, 'gzip')
    result['body_gzip_bytes'] = len(encoding.encode(families, zipped))
    result['gzip'] = median(lambda: gzip.compress(body, compresslevel=1))
    result['series'] = sum(len(f.samples) for f in families)
    result['series_per_guest'] = round(result['series'] / n, 1)
    for domain in domains:
        domain.thaw()
    result['per_guest_ms'] = round(result['scrape'] / n * 1000, 4)
    result['peak_mb'] = round(_peak_mb())
    return result


def synthetic(ns: list, out=sys.stdout) -> None:
    for n in ns:
        done = subprocess.run(
            [sys.executable, os.path.abspath(__file__), '--one-synthetic',
             str(n)], capture_output=True, text=True, cwd=TOP)
        if done.returncode:
            raise SystemExit(done.stderr[-3000:])
        print(json.dumps({'kind': 'synthetic',
                          **json.loads(done.stdout.splitlines()[-1])}),
              file=out, flush=True)


# -- real guests --------------------------------------------------------------


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _http_scrape(port: int) -> bytes:
    import http.client
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
    conn.request('GET', '/metrics', headers=PROMETHEUS)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 200, response.status
    return body


def _reported(body: bytes) -> float:
    """The poll and families' time the exporter reports in a body."""
    import gzip
    if body[:2] == b'\x1f\x8b':
        body = gzip.decompress(body)
    for line in body.decode().splitlines():
        if line.startswith('libvirt_memory_stats_scrape_duration_seconds '):
            return float(line.split()[1])
    raise AssertionError('no libvirt_memory_stats_scrape_duration_seconds')


def _memory_series(port: int) -> list:
    """The names of the per-guest memory series a scrape gives."""
    import gzip
    body = _http_scrape(port)
    if body[:2] == b'\x1f\x8b':
        body = gzip.decompress(body)
    names = set()
    for line in body.decode().splitlines():
        if 'memory' in line and 'domain="' in line and \
                not line.startswith('#'):
            names.add(line.split('{')[0])
    return sorted(names)


def _serve(argv: list, port: int, log: str) -> subprocess.Popen:
    proc = subprocess.Popen(argv, stdout=open(log, 'w'),
                            stderr=subprocess.STDOUT, cwd=TOP)
    deadline = time.monotonic() + 60
    while True:
        try:
            _http_scrape(port)
            return proc
        except (OSError, AssertionError):
            if time.monotonic() > deadline or proc.poll() is not None:
                with open(log) as f:
                    raise SystemExit(f'{argv[0]} did not serve: '
                                     f'{f.read()[-2000:]}') from None
            time.sleep(0.5)


def qemu(ns: list, uri: str | None, ceilometer: str | None = None,
         out=sys.stdout) -> None:
    """Guests added 10 at a time on ``uri`` (None: a libvirtd of this
    run's own), measured at each N.
    """
    import shutil
    import tempfile

    if uri is None:
        from nova.tests.fixtures import private_libvirtd
        why = private_libvirtd.PrivateLibvirtd.why_not()
        if why:
            raise SystemExit(f'no private libvirtd: {why}; or give --uri')
        private_libvirtd.PrivateLibvirtd.ensure()
        try:
            return qemu(ns, private_libvirtd.PrivateLibvirtd.uri,
                        ceilometer, out)
        finally:
            private_libvirtd.PrivateLibvirtd.stop()

    from nova import testimage
    import nova.conf
    from nova.objects import image_meta as image_meta_obj
    from nova.objects import instance as instance_obj
    from nova.virt.libvirt import api
    from nova.virt.libvirt import driver as libvirt_driver

    conf = nova.conf.CONF
    state = tempfile.mkdtemp(prefix='nlv-scale-', dir='/tmp')
    os.chmod(state, 0o755)
    conf([], default_config_files=[])
    conf.set_override('state_path', state)
    conf.set_override('instances_path', state + '/instances')
    conf.set_override('virt_type', 'qemu', 'libvirt')
    conf.set_override('connection_uri', uri, 'libvirt')
    image = testimage.get_images(testimage.DEFAULT_CACHE)['balloon']
    drv = libvirt_driver.LibvirtDriver()
    reader = libvirt_driver.LibvirtDriver(read_only=True)
    raw_conn = api.open_connection(uri, read_only=True)
    kinds = api.VIR_DOMAIN_STATS_BALLOON | api.VIR_DOMAIN_STATS_STATE
    conf_path = os.path.join(state, 'nova.conf')
    ours_port, kumina_port = _free_port(), _free_port()
    with open(conf_path, 'w') as f:
        f.write(f'[libvirt]\nconnection_uri = {uri}\n'
                f'[exporter]\nlisten_port = {ours_port}\n')
    servers = []
    names = []
    try:
        servers.append(_serve([sys.executable, '-m', 'nova.cmd.exporter',
                               '--config-file', conf_path], ours_port,
                              os.path.join(state, 'ours.log')))
        if os.path.exists(KUMINA):
            servers.append(_serve(
                [KUMINA, f'--web.listen-address=127.0.0.1:{kumina_port}',
                 f'--libvirt.uri={uri}'], kumina_port,
                os.path.join(state, 'kumina.log')))
        for target in sorted(ns):
            while len(names) < target:
                name = f'bench-scale-{len(names)}'
                paths = []
                for path in (image.kernel_path, image.ramdisk_path):
                    copy = os.path.join(state, f'{name}-' +
                                        os.path.basename(path))
                    shutil.copy(path, copy)
                    os.chmod(copy, 0o644)
                    paths.append(copy)
                names.append(name)
                drv.spawn(instance_obj.Instance(name, memory_mb=96),
                          image_meta_obj.ImageMeta(
                              kernel_path=paths[0], ramdisk_path=paths[1],
                              os_command_line=image.os_command_line))
            collector = reader.memory_stats_collector()
            deadline = time.monotonic() + 60 + 3 * target
            while time.monotonic() < deadline and any(
                    r.stats_state != 'ok' for r in collector.collect()
                    if r.name.startswith('bench-scale-')):
                time.sleep(2)
            reported = []
            timed = {'raw': lambda: raw_conn.getAllDomainStats(kinds),
                     'poll': collector.collect,
                     'scrape': lambda reported=reported: reported.append(
                         _reported(_http_scrape(ours_port)))}
            if len(servers) > 1:
                timed['kumina'] = lambda: _http_scrape(kumina_port)
            if ceilometer:
                import memstats_poll
                uuids = [raw_conn.lookupByName(n).UUIDString()
                         for n in names]
                # its own process, timed there (median of 5 loops)
                timed['ceilometer'] = functools.partial(
                    memstats_poll.ceilometer_loop, ceilometer, uri, uuids, 5)
            times = {k: [] for k in timed}
            for _ in range(15):  # alternately: this machine's speed drifts
                for key, fn in timed.items():
                    start = time.perf_counter()
                    took = fn()
                    times[key].append(took if key == 'ceilometer' else
                                      time.perf_counter() - start)
            result = {'kind': 'qemu', 'guests': target,
                      **{k: statistics.median(v) for k, v in times.items()}}
            # the exporter's poll and families within its scrape
            result['scrape_reported'] = statistics.median(reported)
            result['poll_vs_raw'] = round(result['poll'] / result['raw'], 2)
            if 'kumina' in result:
                result['scrape_vs_kumina'] = round(
                    result['scrape'] / result['kumina'], 2)
                # what each gives for the money
                result['ours_memory_series'] = len(_memory_series(ours_port))
                result['kumina_memory_series'] = _memory_series(kumina_port)
            print(json.dumps(result), file=out, flush=True)
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(30)
        for name in names:
            try:
                drv.destroy(name)
            except Exception as e:  # report, keep cleaning up
                print(f'could not remove {name}: {e}', file=sys.stderr)
        raw_conn.close()
        shutil.rmtree(state, ignore_errors=True)


# -- the plot -----------------------------------------------------------------


def plot(results: str, png: str) -> None:
    """Time per scrape against guests, ours (synthetic and real) and the
    anchors (kumina's scrape, libvirt's raw bulk call), log-log.
    """
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot

    rows = [json.loads(line) for line in open(results) if line.strip()]
    figure, axis = pyplot.subplots(figsize=(7, 4.5), dpi=100)
    lines = (('synthetic', 'scrape', 'ours, synthetic libvirt', 'o-'),
             ('qemu', 'scrape', 'ours, real guests', 's-'),
             ('qemu', 'raw', "libvirt's bulk call alone, real guests",
              'x:'),
             ('qemu', 'kumina', "kumina's, real guests (asks no QEMU: "
              '2 memory series)', '^--'))
    for kind, key, label, style in lines:
        points = sorted((r['guests'], r[key] * 1000) for r in rows
                        if r['kind'] == kind and key in r)
        if points:
            axis.plot(*zip(*points), style, label=label)
    axis.set_xscale('log')
    axis.set_yscale('log')
    axis.set_xlabel('guests on the host')
    axis.set_ylabel('time per scrape, ms')
    axis.set_title('A scrape as the host fills up (2 cores)')
    axis.grid(True, which='both', alpha=0.3)
    axis.legend(fontsize='small')
    figure.tight_layout()
    figure.savefig(png)
    print(f'wrote {png}')


RESULTS = os.path.join(TOP, 'doc', 'source', 'contributor', 'scale.jsonl')
PNG = os.path.join(TOP, 'doc', 'source', 'contributor', 'scale.png')


def _ns(text: str) -> list:
    return [int(x) for x in text.split(',') if x]


def main(argv) -> int:
    import argparse

    if argv[:1] == ['--one-synthetic']:
        print(json.dumps(synthetic_one(int(argv[1]))))
        return 0
    parser = argparse.ArgumentParser(
        description='Poll and scrape cost from 10 real guests to 4,096 '
                    'synthetic ones; writes the results and the plot.')
    parser.add_argument('--synthetic', type=_ns, default=[100, 1000, 4096],
                        metavar='N,...', help='synthetic guests (empty: '
                        'none; default 100,1000,4096)')
    parser.add_argument('--qemu', type=_ns, default=[10, 20, 40, 60],
                        metavar='N,...', help='real guests, 96 MiB each '
                        '(empty: none; default 10,20,40,60: about 12 GB)')
    parser.add_argument('--uri', help='a libvirtd to boot them on '
                        '(default: one of this run\'s own, in a mount '
                        'namespace: needs root)')
    parser.add_argument('--ceilometer', metavar='VENV', help="also time "
                        "Ceilometer 27's loop, run in VENV "
                        '(ceilometer==27.0.0 and libvirt-python)')
    parser.add_argument('--results', default=RESULTS,
                        help='JSON lines written (default: %(default)s)')
    parser.add_argument('--png', default=PNG,
                        help='the plot (default: %(default)s)')
    parser.add_argument('--plot-only', action='store_true',
                        help='draw the plot of --results, measure nothing')
    args = parser.parse_args(argv)
    if not args.plot_only:
        with open(args.results, 'w') as out:
            tee = _Tee(out)
            if args.synthetic:
                synthetic(args.synthetic, tee)
            if args.qemu:
                qemu(args.qemu, args.uri, args.ceilometer, tee)
        print(f'wrote {args.results}')
    plot(args.results, args.png)
    return 0


class _Tee:
    """Lines written to a file and to stdout (progress on a long run)."""

    def __init__(self, out):
        self._out = out

    def write(self, text: str) -> None:
        self._out.write(text)
        sys.stdout.write(text)

    def flush(self) -> None:
        self._out.flush()
        sys.stdout.flush()


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
