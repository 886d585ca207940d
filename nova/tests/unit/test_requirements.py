"""What the exporter parses a stranger's bytes with is never a release with
a known flaw of its kind: requirements.txt's floors are above them, and so
is what is installed.
"""

import importlib.metadata
import os

from packaging import requirements
from packaging import version

from nova import test

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))

# package: (the first release without the flaw, the flaw)
FLOORS = {
    'h11': ('0.16.0', 'CVE-2025-43859: a chunked body that smuggles a '
                      'second request'),
    'PyYAML': ('5.4', 'CVE-2020-14343: full_load runs code'),
    'bcrypt': ('4.1.0', 'none known: the floor the toolkit cases pass on'),
}


class RequirementsTest(test.TestCase):

    def test_parsers_of_untrusted_input_above_their_flaws(self):
        with open(os.path.join(ROOT, 'requirements.txt')) as f:
            found = {}
            for line in f:
                line = line.split('#')[0].strip()
                if line:
                    req = requirements.Requirement(line)
                    found[req.name] = req
        for name, (floor, flaw) in FLOORS.items():
            req = found[name]
            lowest = min(version.Version(s.version) for s in req.specifier
                         if s.operator in ('>=', '=='))
            self.assertGreaterEqual(lowest, version.Version(floor),
                                    f'{name}: {flaw}')
            installed = version.Version(importlib.metadata.version(name))
            self.assertGreaterEqual(installed, version.Version(floor),
                                    f'{name} installed: {flaw}')
