"""Debian's Prometheus and promtool, unpacked by tools/install-deps into the
virtualenv (installing the package would start a system service).
"""

import os
import subprocess
import sys

from nova.tests import doc_pages

BIN = os.path.join(sys.prefix, 'prometheus', 'usr', 'bin')
PROMTOOL = os.path.join(BIN, 'promtool')
PROMETHEUS = os.path.join(BIN, 'prometheus')


def missing() -> str | None:
    """An error message when the binaries are not there, else None."""
    for path in (PROMTOOL, PROMETHEUS):
        if not os.access(path, os.X_OK):
            return (f'{path} is missing: run tools/install-deps, which '
                    "unpacks Debian's prometheus package there.")
    return None


def promtool(*args: str, stdin: str | None = None):
    """Run promtool; (exit status, stdout + stderr)."""
    result = subprocess.run([PROMTOOL, *args], input=stdin,
                            capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout + result.stderr


ADMIN = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'doc', 'source', 'admin')


def fleet_commands() -> tuple[str, str]:
    """The exporter guide's two commands that fill in
    exporter-fleet-scrape.yml: (without client certificates, with them).
    """
    with open(os.path.join(ADMIN, 'exporter.rst')) as f:
        text = doc_pages.section(f.read(), 'A fleet')
    found = [command for block in doc_pages.console_blocks(text)
             for command, _ in block if 'SHARD_INDEX' in command]
    if len(found) != 2:
        raise AssertionError(f'"A fleet" has {len(found)} commands filling '
                             'in the template, not 2')
    return found[0], found[1]


def render_fleet_config(shard: int, shards: int, client_certs: bool,
                        out: str) -> None:
    """Run the guide's command for ``shard`` of ``shards`` (the page's is
    for 1 of 4), writing to ``out`` instead of
    /etc/prometheus/prometheus.yml.
    """
    command = fleet_commands()[1 if client_certs else 0]
    for printed, ours in (('s/SHARD_INDEX/1/g', f's/SHARD_INDEX/{shard}/g'),
                          ('s/SHARD_COUNT/4/g', f's/SHARD_COUNT/{shards}/g'),
                          ('/etc/prometheus/prometheus.yml', out)):
        if printed not in command:
            raise AssertionError(f'{printed!r} is not in {command!r}')
        command = command.replace(printed, ours)
    subprocess.run(['bash', '-c', command], cwd=ADMIN, check=True,
                   timeout=60)
