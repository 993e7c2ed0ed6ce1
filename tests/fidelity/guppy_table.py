"""Prints guppy3's own rendering of the partition tables that
tests/report_fidelity.rs checks `LiveReport`'s `Display` against.

guppy3 formats `hpy().heap().bytype` (a partition by type, whose column is
headed `Type`) with `SetFormat` in guppy/heapy/Part.py. A `Stat` loaded from
rows (`hpy().load`, the reader of `.stat.dump`) is printed by the same
`SetFormat` and the same printer (10 rows, then `<N more rows. ...>`), so
feeding it rcycle's counts, sizes and type names gives the text guppy prints
for a heap with those counts and sizes. An empty set is `hpy().Nothing`.

Run: python3 -m venv venv && venv/bin/pip install guppy3==3.1.7
     venv/bin/python tests/fidelity/guppy_table.py
"""
import importlib.metadata

from guppy import hpy

hp = hpy()


def table(rows, every_row=False):
    """rows: (count, size, kind), largest size first (guppy's order).
    every_row: print `_.all` (every row) rather than the first screen."""
    trows = [
        '.loader: _load_stat',
        '.format: SetFormat',
        '.timemade: 0',
        '.count: %d' % sum(r[0] for r in rows),
        '.size: %d' % sum(r[1] for r in rows),
        '.kindheader: Type',
        '.kindname: ',
        '.numrows: %d' % len(rows),
    ]
    trows += ['.r: %d %d %s' % r for r in rows]
    stat = hp.load(trows)
    return str(stat.all if every_row else stat)


# Sizes of 1000 bytes in all and counts of 200: exact halves everywhere
# (30.5 %, 12.5 %, 11.5 %, ...), which guppy rounds to even.
TWELVE = [
    (1, 305, 'app::Dispatcher'),
    (3, 205, 'app::Iq'),
    (9, 125, 'app::Node'),
    (21, 115, 'u64'),
    (37, 85, 'alloc::string::String'),
    (41, 55, 'u32'),
    (7, 45, 'u16'),
    (5, 25, 'i64'),
    (13, 15, 'i32'),
    (27, 10, 'u8'),
    (17, 10, 'bool'),
    (19, 5, 'char'),
]
# 99.6 % rounds up to 100; 11 rows are all shown (guppy never writes
# `<1 more rows>`: it prints the row instead).
ELEVEN = [
    (1, 99600, 'app::Dispatcher'),
    (70, 100, 'app::Iq'),
    (8, 100, 'app::Node'),
    (5, 50, 'u64'),
    (4, 40, 'alloc::string::String'),
    (3, 30, 'u32'),
    (3, 25, 'u16'),
    (2, 20, 'i64'),
    (1, 15, 'i32'),
    (1, 10, 'u8'),
    (1, 5, 'bool'),
]
ONE = [(1, 147, 'leak_hunt::Dispatcher')]

print('guppy3', importlib.metadata.version('guppy3'))
for name, rows in [('TWELVE', TWELVE), ('ELEVEN', ELEVEN), ('ONE', ONE)]:
    print('==', name)
    print(table(rows))
print('== TWELVE, _.all')
print(table(TWELVE, every_row=True))
print('== EMPTY')
print(str(hp.Nothing))
print('== EMPTY heap() & Nothing, bytype')
print(str((hp.heap() & hp.Nothing).bytype))
