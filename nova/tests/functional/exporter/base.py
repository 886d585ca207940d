"""The exporter service as the tests start it: in-process on libvirt's test
driver (a real HTTP server on a free port), or the console script as a
process.
"""

import os
import queue
import subprocess
import sys
import threading
import time
import urllib.request

import fixtures

from nova import config
from nova import test
from nova.cmd import exporter as exporter_cmd
import nova.conf
from nova.exporter import service
from nova.virt.libvirt import driver as libvirt_driver

CONF = nova.conf.CONF


class ServiceTestCase(test.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.conf_path = os.path.join(self.tmp, 'nova.conf')

    def load(self, extra=''):
        with open(self.conf_path, 'w') as f:
            f.write('[libvirt]\nconnection_uri = test:///default\n'
                    f'[exporter]\nlisten_port = 0\n{extra}')
        config.parse_args(['--config-file', self.conf_path],
                          prog=service.PROG)

    def start(self, extra=''):
        self.load(extra)
        self.driver = libvirt_driver.LibvirtDriver(read_only=True)
        svc = exporter_cmd.build(CONF, self.driver)
        svc.start()
        self.addCleanup(svc.stop)
        return svc

    def _run(self, *args, **popen):
        proc = subprocess.Popen(
            [sys.executable, '-m', 'nova.cmd.exporter', *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            **popen)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        proc.lines = queue.Queue()

        def read():
            for line in proc.stdout:
                proc.lines.put(line)
        threading.Thread(target=read, daemon=True).start()
        return proc

    def _wait_for(self, proc, text, timeout=30):
        """Read the process's log until ``text``, for at most ``timeout``."""
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                line = proc.lines.get(timeout=deadline - time.monotonic())
            except queue.Empty:
                break
            seen.append(line)
            if text in line:
                return ''.join(seen)
        self.fail(f'{text!r} not logged:\n' + ''.join(seen))

    def scrape(self, svc, scheme='http', context=None):
        url = f'{scheme}://127.0.0.1:{svc.port}/metrics'
        with urllib.request.urlopen(url, timeout=10, context=context) as r:
            return r.read().decode()
