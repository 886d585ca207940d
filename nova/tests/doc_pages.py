"""The documentation's pages as test data: their sections and the
commands of their console blocks, so tests run what the pages print.
"""

import re


def console_blocks(text: str) -> list[list[tuple[str, list[str]]]]:
    """The console blocks of an RST text: each a list of (command, the
    lines it prints) for lines prompted ``#`` or ``$``; a command whose
    line ends in a backslash goes on on the next line, as in a shell.
    """
    blocks = []
    for block in re.findall(r'\.\. code-block:: console\n\n((?:   .*\n|\n)+)',
                            text):
        commands = []
        command = None
        for line in block.splitlines():
            line = line[3:]
            if command is not None:
                command += ' ' + line.strip()
            elif line.startswith(('# ', '$ ')):
                command = line[2:]
            else:
                if line.strip() and commands:
                    commands[-1][1].append(line)
                continue
            if command.endswith('\\'):
                command = command[:-1].rstrip()
                continue
            commands.append((command, []))
            command = None
        blocks.append(commands)
    return blocks


def section(text: str, title: str) -> str:
    """The section ``title`` (underlined with "-") of an RST text."""
    start = text.index(f'{title}\n{"-" * len(title)}\n')
    rest = text[start + 2 * len(title) + 2:]
    end = re.search(r'\n\S.*\n-+\n', rest)
    return rest[:end.start()] if end else rest
