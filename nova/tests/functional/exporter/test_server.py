"""The exporter's HTTP server on libvirt's test driver: paths, auth, the
name filter, and clients that misbehave (idle, half a TLS handshake,
hundreds at once, more than the process has file descriptors for).
"""

import base64
import http.client
import os
import resource
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request

import fixtures

from nova.cmd import exporter as exporter_cmd
import nova.conf
from nova.exporter import encoding
from nova.exporter import service
from nova.tests import doc_table
from nova.tests.fixtures import exporter as fakeexporter
from nova.tests.functional.exporter import base

CONF = nova.conf.CONF


def _request(url, method='GET', auth=None, context=None, timeout=5):
    """(status, headers, body) of one request."""
    request = urllib.request.Request(url, method=method)
    if auth is not None:
        request.add_header('Authorization', 'Basic ' + base64.b64encode(
            ':'.join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout,
                                    context=context) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class ServerTest(base.ServiceTestCase):

    def url(self, svc, path='/metrics', scheme='http'):
        return f'{scheme}://127.0.0.1:{svc.port}{path}'

    def test_paths(self):
        svc = self.start()
        status, headers, body = _request(self.url(svc, '/'))
        self.assertEqual(200, status)
        self.assertIn(b'href="metrics"', body)
        for path in ('/../../etc/passwd', '/metrics/x', '/favicon.ico'):
            status, _, body = _request(self.url(svc, path))
            doc_table.check(self, 'http-unknown-path', status, body.decode())
        # the paths the page names as the exceptions are answered
        listed = doc_table.described()['http-unknown-path']
        for path in ('/metrics', '/', '/-/healthy'):
            self.assertIn(f'``{path}``', listed)
            self.assertEqual(200, _request(self.url(svc, path))[0], path)
        status, headers, body = _request(self.url(svc), method='HEAD')
        self.assertEqual((200, b''), (status, body))
        self.assertGreater(int(headers['Content-Length']), 100)
        status, headers, body = _request(self.url(svc), method='POST')
        self.assertEqual('GET, HEAD', headers['Allow'])
        doc_table.check(self, 'http-method', status, body.decode())

    def test_name_filter_gives_the_named_families(self):
        svc = self.start()
        _, _, body = _request(self.url(
            svc, '/metrics?name[]=libvirt_up&name[]=libvirt_domain_memory'
                 '_stats_major_fault_total'))
        text = body.decode()
        doc_table.check(self, 'http-name-filter', 200, text)
        # the family's TYPE line (its name ends in _total or not,
        # depending on prometheus_client's version)
        self.assertRegex(text, r'# TYPE libvirt_domain_memory_stats_major_'
                               r'fault(_total)? counter')
        self.assertNotIn('libvirt_domain_memory_stats_state', text)

    def test_basic_auth_refuses_before_any_poll(self):
        path = os.path.join(self.tmp, 'web.yml')
        with open(path, 'w') as f:
            f.write('basic_auth_users:\n  prom: '
                    f'{fakeexporter.bcrypt_hash("s3cret")}\n')
        svc = self.start(f'web_config_file = {path}\n')
        polls = self.useFixture(fixtures.MockPatchObject(
            svc.collector, 'collect', wraps=svc.collector.collect)).mock
        for auth in (None, ('prom', 'wrong'), ('nobody', 's3cret'),
                     ('prom', '')):
            status, headers, body = _request(self.url(svc), auth=auth)
            doc_table.check(
                self, 'http-no-credentials', status, body.decode() +
                f'WWW-Authenticate: {headers["WWW-Authenticate"]}')
        self.assertEqual(0, polls.call_count)
        status, _, body = _request(self.url(svc), auth=('prom', 's3cret'))
        self.assertEqual(200, status)
        self.assertIn(b'libvirt_up 1.0', body)
        self.assertEqual(1, polls.call_count)

    def _tls(self, extra=''):
        cert, key = fakeexporter.make_cert(self.tmp)
        path = os.path.join(self.tmp, 'web.yml')
        with open(path, 'w') as f:
            f.write(f'tls_server_config:\n  cert_file: {cert}\n'
                    f'  key_file: {key}\n{extra}')
        context = ssl.create_default_context(cafile=cert)
        return path, context

    def test_idle_and_half_tls_clients_block_no_scrape(self):
        path, context = self._tls()
        svc = self.start(f'web_config_file = {path}\n')
        idle = [socket.create_connection(('127.0.0.1', svc.port))
                for _ in range(50)]
        for sock in idle[:10]:  # half a ClientHello
            sock.sendall(b'\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03')
        self.addCleanup(lambda: [s.close() for s in idle])
        start = time.monotonic()
        status, _, body = _request(self.url(svc, scheme='https'),
                                   context=context)
        doc_table.check(self, 'http-idle-client', status, body.decode())
        self.assertLess(time.monotonic() - start, 2)

    def test_idle_connections_are_cut_and_cost_no_thread(self):
        svc = self.start('client_timeout = 1\n')
        threads = threading.active_count()
        idle = [socket.create_connection(('127.0.0.1', svc.port))
                for _ in range(200)]
        self.addCleanup(lambda: [s.close() for s in idle])
        time.sleep(0.3)
        self.assertLess(threading.active_count() - threads, 3)
        self.assertEqual(200, _request(self.url(svc))[0])
        time.sleep(1.5)
        for sock in idle:
            sock.settimeout(1)
            self.assertEqual(b'', sock.recv(1))  # closed by the server

    def test_concurrent_scrapes_share_one_poll(self):
        svc = self.start()
        real = svc.collector.collect
        polls = []

        def slow_poll(*args, **kw):
            polls.append(1)
            time.sleep(0.5)
            return real(*args, **kw)
        self.useFixture(fixtures.MockPatchObject(svc.collector, 'collect',
                                                 slow_poll))
        encodings = []
        real_encode = encoding.encode

        def counted_encode(*args):
            encodings.append(1)
            return real_encode(*args)
        self.useFixture(fixtures.MockPatchObject(encoding, 'encode',
                                                 counted_encode))
        results = []

        def scrape():
            start = time.monotonic()
            status, _, body = _request(self.url(svc))
            results.append((status, time.monotonic() - start,
                            b'libvirt_up 1.0' in body))
        threads = [threading.Thread(target=scrape) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual([(200, True)] * 20,
                         [(status, up) for status, _, up in results])
        # one poll (two if a scrape came in just as the first ended), and
        # no scrape waited a poll behind another
        self.assertLessEqual(len(polls), 2)
        self.assertLess(max(took for _, took, _ in results), 1.1)
        # and scrapes of one poll share its encoded body
        self.assertLessEqual(len(encodings), len(polls))

    def test_web_config_setting_it_cannot_apply_is_one_line(self):
        path = os.path.join(self.tmp, 'web.yml')
        with open(path, 'w') as f:
            f.write('tls_server_config:\n  ciphers: [x]\n')
        self.load(f'web_config_file = {path}\n')
        svc = exporter_cmd.build(CONF)
        e = self.assertRaises(service.ExporterFailed, svc.start)
        self.assertEqual(1, len(str(e).splitlines()))
        self.assertIn('[exporter] web_config_file', str(e))
        doc_table.check(self, 'web-config-unknown', 1, str(e))

    def test_backlog_takes_a_burst_of_connections(self):
        svc = self.start()
        start = time.monotonic()
        burst = []
        for _ in range(300):
            burst.append(socket.create_connection(('127.0.0.1', svc.port),
                                                  timeout=5))
        self.addCleanup(lambda: [s.close() for s in burst])
        # no 1 s SYN retry: every connection was taken at once
        self.assertLess(time.monotonic() - start, 0.9)


class ServerProcessTest(base.ServiceTestCase):
    """The real process, with clients that would hold up a naive one."""

    def _serve(self, extra='', **popen):
        with open(self.conf_path, 'w') as f:
            f.write('[libvirt]\nconnection_uri = test:///default\n'
                    f'[exporter]\nlisten_port = 0\n{extra}')
        proc = self._run('--config-file', self.conf_path, **popen)
        line = self._wait_for(proc, 'Serving ')
        port = int(line.rsplit('Serving ', 1)[1].split(':')[2].split('/')[0])
        return proc, port

    def test_sigterm_with_an_idle_tls_client_stops_within_2s(self):
        cert, key = fakeexporter.make_cert(self.tmp)
        web = os.path.join(self.tmp, 'web.yml')
        with open(web, 'w') as f:
            f.write(f'tls_server_config:\n  cert_file: {cert}\n'
                    f'  key_file: {key}\n')
        proc, port = self._serve(f'web_config_file = {web}\n')
        idle = socket.create_connection(('127.0.0.1', port))
        self.addCleanup(idle.close)
        time.sleep(0.2)
        start = time.monotonic()
        proc.send_signal(15)
        self.assertEqual(0, proc.wait(timeout=10))
        self.assertLess(time.monotonic() - start, 2)

    def _flooded(self, web: str, auth: tuple | None):
        """An exporter with 64 descriptors (16 connections at most, 4 from
        one address) and ``web`` for its web configuration; a connection
        answered 200 with ``auth``, then 80 idle ones from the same
        address. (the first connection, whether it was closed, the
        process).
        """
        def low_fd_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        path = os.path.join(self.tmp, 'web.yml')
        with open(path, 'w') as f:
            f.write(web)
        proc, port = self._serve(f'client_timeout = 30\n'
                                 f'web_config_file = {path}\n',
                                 preexec_fn=low_fd_limit)
        headers = {} if auth is None else {
            'Authorization': 'Basic ' + base64.b64encode(
                ':'.join(auth).encode()).decode()}
        first = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
        self.addCleanup(first.close)
        first.request('GET', '/metrics', headers=headers)
        response = first.getresponse()
        response.read()
        self.assertEqual(200, response.status)
        hogs = []
        for _ in range(80):
            hogs.append(socket.create_connection(('127.0.0.1', port)))
        self.addCleanup(lambda: [s.close() for s in hogs])

        def closed(sock) -> bool:
            timeout = sock.gettimeout()
            sock.setblocking(False)
            try:
                return sock.recv(1, socket.MSG_PEEK) == b''
            except BlockingIOError:
                return False
            except OSError:
                return True
            finally:
                sock.settimeout(timeout)
        # the newest strangers stay, as many as the address's share has
        # room for
        room = 4 if auth is None else 3
        self.wait_for('the oldest strangers closed', lambda: sum(
            not closed(s) for s in hogs) <= room, 10)
        self.assertFalse(any(closed(s) for s in hogs[-room:]))
        # a scraper gets in
        request = urllib.request.Request(f'http://127.0.0.1:{port}/metrics',
                                         headers=headers)
        with urllib.request.urlopen(request, timeout=10) as r:
            seen = self._wait_for(proc, 'costs a scraper least')
            doc_table.check(self, 'http-fd-exhaustion', r.status,
                            r.read().decode() + seen)
        gone = closed(first.sock)
        return first, gone, proc

    def test_a_flood_of_strangers_keeps_no_scraper_out(self):
        # without passwords, an earlier 200 earns nothing: the first
        # connection, idle since, was closed like any stranger
        _, gone, proc = self._flooded('', None)
        self.assertTrue(gone)
        proc.send_signal(15)
        rest = self._wait_for(proc, 'Stopped.')
        self.assertNotIn('costs a scraper least', rest)  # once a minute

    def test_a_flood_of_strangers_never_closes_a_verified_scraper(self):
        first, gone, proc = self._flooded(
            f'basic_auth_users:\n  prom: {fakeexporter.bcrypt_hash("pw")}\n',
            ('prom', 'pw'))
        self.assertFalse(gone)
        first.request('GET', '/metrics', headers={
            'Authorization': 'Basic ' + base64.b64encode(b'prom:pw').decode()})
        self.assertEqual(200, first.getresponse().status)
        proc.send_signal(15)
        self._wait_for(proc, 'Stopped.')
