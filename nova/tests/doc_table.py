"""The table of bad input and faults in the admin guide, as test data.

``doc/source/admin/bad-input.rst`` lists each case with an id, the text
nova-libvirt prints (every ``literal`` in the third column) and the exit
status. Tests run each case and call ``check``, so the page stays true.
"""

import functools
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PAGE = os.path.join(ROOT, 'doc', 'source', 'admin', 'bad-input.rst')


@functools.lru_cache(maxsize=None)
def rows() -> dict[str, tuple[list[str], int]]:
    """case id -> (texts that must be printed, exit status)."""
    with open(PAGE) as f:
        text = f.read()
    found = {}
    for row in re.split(r'\n   \* - ', text)[1:]:
        cells = [' '.join(c.split()) for c in re.split(r'\n     - ', row)]
        case = re.fullmatch(r'``([a-z0-9-]+)``', cells[0])
        if case is None:
            continue  # the header row
        says = re.findall(r'``(.+?)``', cells[2])
        found[case.group(1)] = (says, int(cells[3].split()[0]))
    return found


@functools.lru_cache(maxsize=None)
def described() -> dict[str, str]:
    """case id -> its second column (what is done), whitespace folded."""
    with open(PAGE) as f:
        text = f.read()
    found = {}
    for row in re.split(r'\n   \* - ', text)[1:]:
        cells = [' '.join(c.split()) for c in re.split(r'\n     - ', row)]
        case = re.fullmatch(r'``([a-z0-9-]+)``', cells[0])
        if case is not None:
            found[case.group(1)] = cells[1]
    return found


def check(testcase, case: str, rc: int, output: str, **placeholders):
    """Fail ``testcase`` unless ``output`` and ``rc`` are as documented."""
    says, status = rows()[case]
    testcase.assertEqual(status, rc, f'{case}: {output}')
    for text in says:
        for name, value in placeholders.items():
            text = text.replace(name, value)
        testcase.assertIn(text, output, f'{case}: documented text missing')
