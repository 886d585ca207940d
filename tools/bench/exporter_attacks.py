#!/usr/bin/env python3
"""Benchmark: the exporter's web surface under attack, beside node_exporter
and aiohttp.

Runs each attack of nova/tests/fixtures/attacks.py, at full length, against
``nova-libvirt-exporter`` (libvirt's test driver), against Debian's
``prometheus-node-exporter`` (the exporter toolkit in Go; tools/install-deps
unpacks it into .venv/node-exporter) and against the exporter's handler and
app served by aiohttp instead of our server (tools/bench/aiohttp_candidate.py,
the maintained server we would adopt if it held), one after the other on
this machine,
with the same web configuration (TLS and a cost-10 bcrypt user; HTTP/2
prior knowledge on a plain port) and the same scraper: a new connection a
scrape, once a second, valid credentials. For each it prints:

- scrapes answered 200 within 10 s, and their median time (and alone);
- peak memory during, memory and file descriptors after, against rest;
- seconds until CPU is back under 10 % of a core;
- how long SIGTERM took.

    .venv/bin/python tools/bench/exporter_attacks.py [ATTACK ...]
        [--only ours|node|aiohttp] [--scale 1.0]

Run by hand; results are recorded in doc/source/admin/exporter.rst ("Under
attack"). ``--scale`` shortens every attack (0.5: half as long).
"""

import argparse
import importlib.util
import json
import os
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, TOP)

from nova.tests.fixtures import attacks  # noqa: E402
from nova.tests.fixtures import exporter as fakeexporter  # noqa: E402

USER, PASSWORD = 'prometheus', 'scrape-me'
NODE = os.path.join(os.path.dirname(sys.executable), '..', 'node-exporter',
                    'usr', 'bin', 'prometheus-node-exporter')
# attack: seconds (the issues' lengths)
LENGTHS = {'h2-window0': 20, 'hello-junk': 10, 'idle': 30,
           'rapid-reset': 20, 'hellos': 20, 'passwords': 28, 'body': 10,
           'resets': 20, 'pipeline': 12, 'pipeline-401': 8, 'burst': 10,
           'close-notify': 10, 'accept-junk': 10, 'slow-accepts': 12,
           'cap-idle': 20, 'cap-slow-401': 20}
# the servers measured: ours, the exporter toolkit's (Go), and a
# maintained Python server that could replace ours (aiohttp_candidate.py)
KINDS = ('ours', 'node', 'aiohttp')
# attack: the file-descriptor limit the server runs with (the connection
# cap of ours: 350 - 64 = 286)
NOFILE = {'cap-idle': 350, 'cap-slow-401': 350}
# attack: guests on ours (libvirt's test driver): a body of about 1 MB
GUESTS = {'slow-accepts': 1000}
# attack: more arguments for the attacker
ARGS = {'passwords': ['--source', '127.0.0.2'],
        'resets': ['--password', PASSWORD],
        'accept-junk': ['--password', PASSWORD],
        'slow-accepts': ['--password', PASSWORD]}


def start(kind: str, work: str, tls: bool, nofile: int | None = None,
          guests: int = 0) -> tuple:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    web = f'basic_auth_users:\n  {USER}: ' \
          f'{fakeexporter.bcrypt_hash(PASSWORD, 10)}\n'
    if tls:
        web = (f'tls_server_config:\n  cert_file: {work}/server.crt\n'
               f'  key_file: {work}/server.key\n') + web
    with open(f'{work}/web.yml', 'w') as f:
        f.write(web)
    if kind == 'node':
        argv = [NODE, f'--web.listen-address=127.0.0.1:{port}',
                f'--web.config.file={work}/web.yml',
                '--collector.disable-defaults', '--collector.meminfo']
    elif kind == 'aiohttp':
        uri = fakeexporter.test_driver_uri(work, guests) if guests else \
            'test:///default'
        with open(f'{work}/aiohttp.conf', 'w') as f:
            f.write(f'[libvirt]\nconnection_uri = {uri}\n'
                    f'[exporter]\nlisten_port = {port}\n'
                    f'web_config_file = {work}/web.yml\n')
        argv = [sys.executable, os.path.join(TOP, 'tools', 'bench',
                                             'aiohttp_candidate.py'),
                '--config-file', f'{work}/aiohttp.conf']
    else:
        uri = fakeexporter.test_driver_uri(work, guests) if guests else \
            'test:///default'
        with open(f'{work}/nova.conf', 'w') as f:
            f.write(f'[libvirt]\nconnection_uri = {uri}\n'
                    f'[exporter]\nlisten_port = {port}\n'
                    f'web_config_file = {work}/web.yml\n')
        argv = [sys.executable, '-m', 'nova.cmd.exporter', '--config-file',
                f'{work}/nova.conf']

    def limit():
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    log = open(f'{work}/{kind}.log', 'w')
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                            cwd=TOP, preexec_fn=limit)
    context = ssl.create_default_context(cafile=f'{work}/server.crt') \
        if tls else None
    scraper = attacks.Scraper('127.0.0.1', port, context, (USER, PASSWORD))
    deadline = time.monotonic() + 30
    while scraper.once()[0] != 200:
        if time.monotonic() > deadline or proc.poll() is not None:
            with open(f'{work}/{kind}.log') as f:
                tail = f.read()[-2000:]
            raise SystemExit(f'{kind} did not start: {tail}')
        time.sleep(0.2)
    return proc, port, scraper


def run(kind: str, name: str, work: str, scale: float) -> dict:
    tls = name != 'h2-window0'
    proc, port, scraper = start(kind, work, tls, NOFILE.get(name),
                                GUESTS.get(name, 0))
    probe = attacks.Probe(proc.pid)
    try:
        time.sleep(1)
        rest = probe.sample()
        alone = statistics.median(scraper.once()[1] for _ in range(10))
        duration = LENGTHS[name] * scale
        args = [sys.executable, '-m', 'nova.tests.fixtures.attacks', name,
                '--port', str(port), '--duration', str(duration),
                '--user', USER]
        if tls:
            args.append('--tls')
        args += ARGS.get(name, [])
        probe.start()
        scraper.start()
        out = subprocess.run(args, capture_output=True, text=True,
                             cwd=TOP).stdout
        scraper.stop()
        probe.stop()
        ended = time.monotonic()
        calm = None
        while time.monotonic() - ended < 30:
            if probe.cpu_share(1.0) < 0.10:
                calm = time.monotonic() - ended
                break
        after = probe.sample()
        began = time.monotonic()
        proc.terminate()
        try:
            proc.wait(30)
            stop = time.monotonic() - began
        except subprocess.TimeoutExpired:
            proc.kill()
            stop = None
        took = [t for status, t in scraper.results if status == 200]
        return {
            'good': f'{scraper.good}/{len(scraper.results)}',
            'median_ms': round(statistics.median(took) * 1000, 1)
            if took else None,
            'alone_ms': round(alone * 1000, 1),
            'rest_mb': round(rest[1]), 'peak_mb': round(probe.peak_rss),
            'after_mb': round(after[1]), 'fds': f'{rest[2]}->{after[2]}',
            'calm_s': None if calm is None else round(calm, 1),
            'stop_s': None if stop is None else round(stop, 2),
            'attack': json.loads(out or '{}')}
    finally:
        if proc.poll() is None:
            proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('attacks', nargs='*', default=list(LENGTHS))
    parser.add_argument('--only', choices=KINDS)
    parser.add_argument('--scale', type=float, default=1.0)
    args = parser.parse_args()
    kinds = [args.only] if args.only else list(KINDS)
    if 'node' in kinds and not os.path.exists(NODE):
        print(f'no node_exporter at {NODE}: run tools/install-deps',
              file=sys.stderr)
        kinds.remove('node')
    if 'aiohttp' in kinds and importlib.util.find_spec('aiohttp') is None:
        print('no aiohttp: run tools/install-deps (it installs '
              'tools/bench/requirements.txt)', file=sys.stderr)
        kinds.remove('aiohttp')
    work = tempfile.mkdtemp(prefix='nlv-attacks-')
    try:
        fakeexporter.make_cert(work, san='IP:127.0.0.1,DNS:localhost')
        for name in args.attacks:
            for kind in kinds:
                result = run(kind, name, work, args.scale)
                print(json.dumps({'attack': name, 'server': kind,
                                  **result}), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
