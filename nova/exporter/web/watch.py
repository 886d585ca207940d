"""The web configuration in force, re-read when its files change.

As the exporter toolkit re-reads its web configuration for each new
connection, ``Current.for_connection()`` looks at the files (a few
``stat()`` calls, no read) each time a client connects, and reads them
again only when one changed: a renewed certificate or a changed user
applies to the next connection without a signal. SIGHUP
(``Current.reload()``) reads them whatever their times say.

A file that became invalid or vanished keeps the last good configuration,
with one WARNING per change of the files saying the next start would fail;
switching between HTTP and HTTPS needs a restart. Nothing here serves
HTTP.
"""

import dataclasses
import logging
import threading

from nova import exception
from nova.exporter.web import config as web_config
from nova.exporter.web import yamlread

LOG = logging.getLogger(__name__)


class Current:
    """The WebConfig and ServerTLS (or None) in force. ``load()`` reads
    them, raising a NovaException (or OSError, ValueError) in one line.
    """

    def __init__(self, load):
        self._load = load
        self.config, self.tls = load()
        self._lock = threading.Lock()
        self._refused = None  # the files' identities last refused
        #: why the files in place are refused (None: they are in force)
        self.refusal: str | None = None

    def for_connection(self):
        """The ServerTLS for a new connection (None: plain HTTP), read
        again first if a file changed.
        """
        if web_config.changed(self.config):
            self.reload()
        return self.tls

    def reload(self, asked: bool = False) -> bool:
        """Read the files again; whether what applies changed. A refusal
        is logged once per change of the files, and each time it is
        ``asked`` for (SIGHUP).
        """
        with self._lock:
            running = self.config
            refused = None
            try:
                config, tls = self._load()
            except (exception.NovaException, ValueError, OSError) as e:
                refused = str(e)
            self.refusal = refused
            if refused is not None:  # outside the except (oslo.log)
                files = tuple(yamlread.identity(f[0])
                              for f in running.files)
                if files != self._refused or asked:
                    self._refused = files
                    LOG.warning('Web configuration not reloaded, the last '
                                'good one stays; the next start will fail: '
                                '%s', refused)
                # Not looked at again until a file changes once more.
                self.config = _with_files(running, files)
                return False
            self._refused = None
            if (config.tls is None) != (running.tls is None):
                LOG.warning('The web configuration now asks for %s: '
                            'switching between HTTP and HTTPS needs a '
                            'restart; the last configuration stays until '
                            'then.', 'plain HTTP' if config.tls is None
                            else 'HTTPS')
                self.config = _with_files(running, config.files)
                return False
            if config.fingerprint == running.fingerprint:
                self.config = config
                return False
            for warning in config.warnings:
                LOG.warning('[exporter] web_config_file: %s', warning)
            self.config, self.tls = config, tls
            LOG.info('Web configuration changed: %s.', config.summary())
            return True


def _with_files(config, files):
    return dataclasses.replace(config, files=files)
