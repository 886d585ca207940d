#!/usr/bin/env python3
"""Benchmark: access control under attack.

Runs ``nova-libvirt-exporter`` as a process of its own, over HTTPS with
basic auth (cost 10, as ``htpasswd -nBC 10`` writes), on libvirt's test
driver, and measures, with clients of this process on loopback:

1. enumeration: the median time of a request naming an unknown user and of
   one with a known user's wrong password (each password new, so never
   cached);
2. guessing: an authenticated scrape's median time alone, and while
   CLIENTS clients (threads of 4 other processes) send wrong passwords as
   fast as they are answered, each on a new TLS connection; the scraper
   keeps its connection open, as Prometheus does;
3. memory: the exporter's VmRSS at rest, after FLOOD seconds of
   connect-handshake-close from 50 clients, with 1,000 idle TLS
   connections open (from 8 loopback addresses: the exporter takes at
   most 256 from one), with 1,000 idle plain connections (a second exporter
   without TLS), and after they all closed.

    .venv/bin/python tools/bench/exporter_access.py [CLIENTS] [FLOOD]

Defaults: 200 clients, 20 seconds. Run by hand; results are recorded in
doc/source/contributor/benchmarks.rst ("The exporter's web surface").
"""

import base64
import http.client
import multiprocessing
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import bcrypt

USER, PASSWORD = 'prometheus', 's3cret-scraper'


def rss_mb(pid: int) -> float:
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return 0.0


def make_cert(work: str) -> tuple[str, str]:
    cert, key = f'{work}/server.crt', f'{work}/server.key'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048',
                    '-nodes', '-keyout', key, '-out', cert, '-days', '1',
                    '-subj', '/CN=localhost', '-addext',
                    'subjectAltName=DNS:localhost,IP:127.0.0.1'],
                   check=True, capture_output=True)
    return cert, key


def start(work: str, name: str, web: str | None) -> tuple:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    conf = f'{work}/{name}.conf'
    extra = ''
    if web is not None:
        with open(f'{work}/{name}.yml', 'w') as f:
            f.write(web)
        extra = f'web_config_file = {work}/{name}.yml\n'
    with open(conf, 'w') as f:
        f.write('[libvirt]\nconnection_uri = test:///default\n'
                f'[exporter]\nlisten_port = {port}\n{extra}')
    log = open(f'{work}/{name}.log', 'w')
    proc = subprocess.Popen([sys.executable, '-m', 'nova.cmd.exporter',
                             '--config-file', conf], stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        with open(f'{work}/{name}.log') as f:
            if 'Serving ' in f.read():
                break
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f'{name} did not start: see {work}/{name}.log')
        time.sleep(0.05)
    return proc, port


def request(port, context, user, password, path='/metrics') -> tuple:
    """(status, seconds)."""
    began = time.perf_counter()
    conn = http.client.HTTPSConnection('localhost', port, timeout=60,
                                       context=context)
    token = base64.b64encode(f'{user}:{password}'.encode()).decode()
    try:
        conn.request('GET', path,
                     headers={'Authorization': f'Basic {token}'})
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - began
    except OSError:
        return 0, time.perf_counter() - began
    finally:
        conn.close()


class Scraper:
    """An authenticated client on one kept-alive connection."""

    def __init__(self, port, context):
        self.conn = http.client.HTTPSConnection('localhost', port,
                                                timeout=60, context=context)
        token = base64.b64encode(f'{USER}:{PASSWORD}'.encode()).decode()
        self.headers = {'Authorization': f'Basic {token}'}

    def get(self) -> float:
        began = time.perf_counter()
        self.conn.request('GET', '/metrics', headers=self.headers)
        response = self.conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        return time.perf_counter() - began


def guessers(port, cert, n, stop, counts):
    """N threads sending wrong passwords, each on a new connection, until
    ``stop``; their answers' counts go to ``counts``.
    """
    context = ssl.create_default_context(cafile=cert)
    found = {}
    lock = threading.Lock()

    def guess(k):
        i = 0
        while not stop.is_set():
            status, _ = request(port, context, USER, f'g{os.getpid()}-{k}-'
                                f'{i}', '/')
            with lock:
                found[status] = found.get(status, 0) + 1
            i += 1
    threads = [threading.Thread(target=guess, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts.put(found)


def main() -> None:
    clients = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    flood = float(sys.argv[2]) if len(sys.argv) > 2 else 20
    work = tempfile.mkdtemp(prefix='nlv-access-')
    cert, key = make_cert(work)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode()
    web = (f'tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n'
           f'basic_auth_users:\n  {USER}: {hashed}\n')
    proc, port = start(work, 'tls', web)
    plain, plain_port = start(work, 'plain', None)
    context = ssl.create_default_context(cafile=cert)
    try:
        print(f'exporter at rest: {rss_mb(proc.pid):.0f} MB')
        # 1. enumeration by timing
        unknown = [request(port, context, f'nobody-{i}', f'x{i}')[1]
                   for i in range(20)]
        wrong = [request(port, context, USER, f'wrong-{i}')[1]
                 for i in range(20)]
        print(f'unknown user: median {statistics.median(unknown) * 1e3:.1f}'
              f' ms; known user, wrong password: median '
              f'{statistics.median(wrong) * 1e3:.1f} ms')

        # 2. an authenticated scrape, alone and under guessing
        scraper = Scraper(port, context)
        scraper.get()  # the credentials are now known
        alone = [scraper.get() for _ in range(20)]
        stop = multiprocessing.Event()
        counts = multiprocessing.Queue()
        attackers = [multiprocessing.Process(
            target=guessers, args=(port, cert, clients // 4, stop, counts))
            for _ in range(4)]
        for a in attackers:
            a.start()
        time.sleep(3)
        attacked = [scraper.get() for _ in range(20)]
        stop.set()
        answered = {}
        for _ in attackers:
            for status, n in counts.get(timeout=120).items():
                answered[status] = answered.get(status, 0) + n
        for a in attackers:
            a.join()
        print(f'authenticated scrape alone: median '
              f'{statistics.median(alone) * 1e3:.1f} ms; with {clients} '
              f'clients guessing: median '
              f'{statistics.median(attacked) * 1e3:.1f} ms, worst '
              f'{max(attacked) * 1e3:.1f} ms '
              f'({statistics.median(attacked) / statistics.median(alone):.2f}'
              f'x); guesses answered {answered}')
        print(f'exporter after guessing: {rss_mb(proc.pid):.0f} MB')
        stop = threading.Event()

        # 3. memory under handshake floods and idle connections
        stop.clear()
        handshakes = [0]

        def handshake_flood():
            bare = ssl.create_default_context(cafile=cert)
            while not stop.is_set():
                try:
                    with socket.create_connection(('127.0.0.1', port),
                                                  timeout=10) as raw:
                        with bare.wrap_socket(raw,
                                              server_hostname='localhost'):
                            handshakes[0] += 1
                except OSError:
                    pass
        threads = [threading.Thread(target=handshake_flood)
                   for _ in range(50)]
        for t in threads:
            t.start()
        peak = 0.0
        deadline = time.monotonic() + flood
        while time.monotonic() < deadline:
            peak = max(peak, rss_mb(proc.pid))
            time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
        print(f'{flood:.0f} s of handshake floods from 50 clients '
              f'({handshakes[0]} handshakes): peak {peak:.0f} MB, after '
              f'{rss_mb(proc.pid):.0f} MB')

        for name, pid, tls_port, wrap in (
                ('TLS', proc.pid, port, True),
                ('plain HTTP', plain.pid, plain_port, False)):
            before = rss_mb(pid)
            idle = []
            bare = ssl.create_default_context(cafile=cert)
            for i in range(1000):
                raw = socket.create_connection(
                    ('127.0.0.1', tls_port), timeout=10,
                    source_address=(f'127.0.0.{2 + i % 8}', 0))
                idle.append(bare.wrap_socket(
                    raw, server_hostname='localhost') if wrap else raw)
            time.sleep(1)
            held = rss_mb(pid)
            for s in idle:
                s.close()
            time.sleep(2)
            print(f'1,000 idle {name} connections: {before:.0f} MB before, '
                  f'{held:.0f} MB held, {rss_mb(pid):.0f} MB after they '
                  'closed')
    finally:
        for p in (proc, plain):
            p.send_signal(signal.SIGTERM)
            p.wait(30)
        for name in ('tls', 'plain'):
            with open(f'{work}/{name}.log') as f:
                lines = f.read().splitlines()
            print(f'{name} exporter log: {len(lines)} lines, '
                  f'{sum("Traceback" in line for line in lines)} tracebacks')
        subprocess.run(['rm', '-rf', work])


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
