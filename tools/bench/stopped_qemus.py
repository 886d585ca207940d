#!/usr/bin/env python3
"""Benchmark: polls beside stopped QEMUs.

Boots N real test guests (default 8; an embedded QEMU root of its own, or
``--uri`` a libvirtd), then stops the QEMUs of more and more of them (by
default 1, then 3, then 5) with SIGSTOP, and times, at each step:

* the first poll, which meets the newly stopped QEMUs (its bulk calls are
  stuck on them: each late call's guests are read again one per call);
* the next polls, which know them stuck and keep them out of the bulk call;
* a fresh collector's first poll (with ``--uri``, on a new connection, as
  a new process has);

and counts, in every poll, the healthy guests without figures (the target:
none) and the stopped guests not reported unresponsive (none). Every QEMU
it stopped is thawed (SIGCONT) before the guests are removed, even on
failure.

    tini -s -- .venv/bin/python tools/bench/stopped_qemus.py [N] \
        [--steps 1,3,5] [--uri URI]

Run by hand; results are recorded in
doc/source/contributor/benchmarks.rst.
"""

import os
import signal
import statistics
import subprocess
import sys
import time

import memstats_poll  # tools/bench, beside this file

from nova.virt.libvirt import host as libvirt_host
from nova.virt.libvirt import memstats


def qemu_pid(name: str) -> int:
    out = subprocess.run(['pgrep', '-f', f'guest={name},'],
                         capture_output=True, text=True).stdout.split()
    if len(out) != 1:
        raise RuntimeError(f'{len(out)} QEMU processes of {name}')
    return int(out[0])


def _timed(collector) -> tuple[float, list]:
    start = time.monotonic()
    rows = collector.collect()
    return time.monotonic() - start, rows


def _wrong(rows, stopped: set) -> tuple[int, int]:
    """(healthy guests not ok, stopped guests not unresponsive)"""
    healthy = sum(r.stats_state != 'ok' for r in rows
                  if r.name not in stopped)
    frozen = sum(r.stats_state != 'unresponsive' for r in rows
                 if r.name in stopped)
    return healthy, frozen


def main(argv) -> int:
    n = int(argv[0]) if argv[:1] and argv[0].isdigit() else 8
    steps = ([int(k) for k in argv[argv.index('--steps') + 1].split(',')]
             if '--steps' in argv else [1, 3, 5])
    uri = argv[argv.index('--uri') + 1] if '--uri' in argv else ''
    frozen_pids = []
    failed = False
    with memstats_poll.booted_guests(n, uri) as drv:
        try:
            collector = memstats.MemoryStatsCollector(drv.host)
            collector.collect()
            collector.collect()
            names = sorted(r.name for r in collector.collect())
            print(f'{n} real guests on {uri or "an embedded QEMU root"}; '
                  'times in seconds')
            stopped = set()
            for count in steps:
                for name in names[len(stopped):count]:
                    pid = qemu_pid(name)
                    os.kill(pid, signal.SIGSTOP)
                    frozen_pids.append(pid)
                    stopped.add(name)
                first, rows = _timed(collector)
                wrong = [_wrong(rows, stopped)]
                later = []
                for _ in range(10):
                    took, rows = _timed(collector)
                    later.append(took)
                    wrong.append(_wrong(rows, stopped))
                # (an embedded driver serves one connection a process: a
                # new collector on the same one there)
                fresh_host = (libvirt_host.Host(drv.host.uri,
                                                stats_workers=0)
                              if uri else drv.host)
                try:
                    fresh, rows = _timed(
                        memstats.MemoryStatsCollector(fresh_host))
                    wrong.append(_wrong(rows, stopped))
                finally:
                    if uri:
                        fresh_host.close()
                healthy = sum(h for h, _ in wrong)
                unanswered = sum(f for _, f in wrong)
                failed |= bool(healthy) or first > 1.5
                print(f'{count} stopped: first poll {first:.2f}, next '
                      f'{min(later):.3f}-{max(later):.3f} (median '
                      f'{statistics.median(later):.3f}), fresh collector '
                      f'{fresh:.2f}; healthy guests without figures '
                      f'{healthy}, stopped guests not unresponsive '
                      f'{unanswered} (12 polls)')
                sys.stdout.flush()
        finally:
            for pid in frozen_pids:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
    print('target: every healthy guest read in every poll, the first poll '
          'within 1.5 s: ' + ('MISSED' if failed else 'met'))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
