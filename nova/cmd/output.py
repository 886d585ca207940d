"""How nova-libvirt prints memory statistics: a table, JSON or CSV.

Every figure libvirt gave is shown, by the names of
nova.virt.libvirt.memstats.SHOWN (JSON and CSV keys; the table's headings
are the same names in capitals). The table fits 100 columns: a line of
the figures an operator reads first, a line of every other figure libvirt
gave, and the reason; ``wide`` gives one line a guest, a column a figure.
Formatting only; collecting is nova.virt.libvirt.memstats' job.
"""

import csv
import io
import json
import textwrap
import time

from nova.virt.libvirt import memstats

FORMATS = ('table', 'json', 'csv')
WIDTH = 100

# The table's first line: words (left-aligned), then figures.
_WORDS = ('name', 'stats_state', 'period')
_FIRST = ('used_mib', 'usable_mib', 'available_mib', 'rss_mib')
# The wide table: every column.
_WIDE_WORDS = ('name', 'display_name', 'project', 'stats_state', 'period',
               'wanted_period')
_HEADINGS = {'stats_state': 'STATE', 'display_name': 'INSTANCE',
             'wanted_period': 'WANTED', 'last_update': 'UPDATED',
             'free_page_reporting': 'FPR'}


def _heading(field: str) -> str:
    return _HEADINGS.get(field, field.upper())


def _cell(field: str, value, now: float) -> str:
    if value is None:
        return '-'
    if field == 'last_update':
        return f'{max(0, now - value):.0f}s ago'
    if field in ('period', 'wanted_period'):
        return f'{value}s'
    if field == 'free_page_reporting':
        return _on(value)
    return str(value)


def _grid(fields: tuple, words: int, values: list, now: float,
          reasons: list | None, extra=None) -> str:
    """Columns of ``fields`` (the first ``words`` left-aligned), each row
    followed by ``extra(row)``'s lines and its reason.
    """
    cells = [[_heading(field) for field in fields]]
    cells += [[_cell(field, value[field], now) for field in fields]
              for value in values]
    widths = [max(len(line[i]) for line in cells)
              for i in range(len(fields))]
    lines = []
    for index, line in enumerate(cells):
        lines.append('  '.join(
            cell.ljust(width) if column < words else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(line, widths))
        ).rstrip())
        if index:
            if extra is not None:
                lines += extra(values[index - 1])
            if reasons is not None:
                lines += textwrap.wrap(reasons[index - 1], WIDTH,
                                       initial_indent='    ',
                                       subsequent_indent='    ')
    return '\n'.join(lines) + '\n'


def _on(flag: bool) -> str:
    return 'on' if flag else 'off'


def _more(value: dict) -> list[str]:
    """Every other figure libvirt gave, and who owns the guest, wrapped to
    the table's width.
    """
    shown = set(_WORDS + _FIRST) | {'last_update'}
    parts = [f'{name} {value[name]}' for name, _ in memstats.SHOWN
             if name not in shown and value[name] is not None]
    owner = [f'{label} {value[field]}' for label, field in (
        ('instance', 'display_name'), ('project', 'project'))
        if value[field]]
    if value['wanted_period'] is not None and \
            value['wanted_period'] != value['period']:
        owner.append(f"wanted period {value['wanted_period']}s")
    has = value['free_page_reporting']
    wanted = value['wanted_free_page_reporting']
    if has is not None and wanted is not None and has != wanted:
        owner.append(f'free page reporting {_on(has)}, wanted {_on(wanted)} '
                     '(at its next recreation)')
    text = ', '.join(parts)
    if owner:
        text = f'{text}; {", ".join(owner)}' if text else ', '.join(owner)
    return textwrap.wrap(text, WIDTH, initial_indent='    ',
                         subsequent_indent='    ') if text else []


def format_table(rows, now: float | None = None, wide: bool = False) -> str:
    now = time.time() if now is None else now
    values = [row.as_dict() for row in rows]
    reasons = [row.reason for row in rows]
    if wide:
        fields = _WIDE_WORDS + tuple(name for name, _ in memstats.SHOWN) + \
            ('last_update', 'free_page_reporting')
        return _grid(fields, len(_WIDE_WORDS), values, now, reasons)
    fields = _WORDS + _FIRST + ('last_update',)
    return _grid(fields, len(_WORDS), values, now, reasons, _more)


def format_memstats(rows, fmt: str, wide: bool = False) -> str:
    if fmt == 'json':
        return json.dumps([row.as_dict() for row in rows], indent=2) + '\n'
    if fmt == 'csv':
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=memstats.FIELDS,
                                lineterminator='\n')
        writer.writeheader()
        for row in rows:
            writer.writerow({k: '' if v is None else v
                             for k, v in row.as_dict().items()})
        return buffer.getvalue()
    return format_table(rows, wide=wide)
