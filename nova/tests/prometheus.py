"""Debian's Prometheus and promtool, unpacked by tools/install-deps into the
virtualenv (installing the package would start a system service).
"""

import os
import subprocess
import sys

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
