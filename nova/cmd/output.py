"""How nova-libvirt prints memory statistics: table, JSON or CSV.

Formatting only; collecting is nova.virt.libvirt.memstats' job.
"""

import csv
import io
import json
import time

from nova.virt.libvirt import memstats

FORMATS = ('table', 'json', 'csv')

# (heading, field) of the table's columns; the reason goes on its own line.
_COLUMNS = (
    ('NAME', 'name'), ('INSTANCE', 'display_name'), ('PROJECT', 'project'),
    ('STATE', 'stats_state'), ('PERIOD', 'period'),
    ('USAGE MiB', 'memory_usage_mb'), ('RESIDENT MiB', 'memory_resident_mb'),
    ('ACTUAL MiB', 'memory_actual_mb'),
    ('AVAILABLE MiB', 'memory_available_mb'), ('SWAP IN', 'swap_in_mb'),
    ('SWAP OUT', 'swap_out_mb'), ('UPDATED', 'last_update'),
)


# Columns up to PERIOD are words, left-aligned; figures are right-aligned.
_LEFT = 5


def _cell(field: str, value, now: float) -> str:
    if value is None:
        return '-'
    if field == 'last_update':
        return f'{max(0, now - value):.0f}s ago'
    return str(value)


def format_table(rows, now: float | None = None) -> str:
    now = time.time() if now is None else now
    if not rows:
        return 'No guests.\n'
    cells = [[heading for heading, _ in _COLUMNS]]
    values = [row.as_dict() for row in rows]
    cells += [[_cell(field, value[field], now) for _, field in _COLUMNS]
              for value in values]
    widths = [max(len(line[i]) for line in cells)
              for i in range(len(_COLUMNS))]
    lines = []
    for index, line in enumerate(cells):
        text = '  '.join(
            cell.ljust(width) if column < _LEFT else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(line, widths)))
        lines.append(text.rstrip())
        if index:
            lines.append('    ' + rows[index - 1].reason)
    return '\n'.join(lines) + '\n'


def format_memstats(rows, fmt: str) -> str:
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
    return format_table(rows)
