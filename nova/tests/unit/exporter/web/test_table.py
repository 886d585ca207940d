"""The connection table: who is closed to make room, checked against a
model on sequences of arrivals, changes of rank and departures that
Hypothesis chooses.

The model is the rule as the issue states it: a new connection is refused
only when every connection of its scope (its address's share when full,
else the whole table) is kept (rank None); otherwise the one closed is of
the lowest rank, and of those the one longest in that rank.
"""

import hypothesis
from hypothesis import strategies as st

from nova import test
from nova.exporter.web import table

RANKS = (table.STRANGER, table.IDLE, table.STALLED, None)
OPS = st.lists(st.one_of(
    st.tuples(st.just('connect'), st.integers(0, 3)),
    st.tuples(st.just('rank'), st.integers(0, 40),
              st.sampled_from(RANKS)),
    st.tuples(st.just('leave'), st.integers(0, 40))), max_size=200)


class RankTest(test.TestCase):

    def test_what_each_state_costs_a_scraper(self):
        rank = table.rank
        # (answering, let in, verified, stalled)
        self.assertEqual(table.STRANGER, rank(False, False, False, False))
        self.assertEqual(table.STRANGER, rank(False, True, False, False))
        self.assertEqual(table.IDLE, rank(False, True, True, False))
        self.assertEqual(table.STRANGER, rank(True, False, True, False))
        self.assertEqual(table.STRANGER, rank(True, True, False, True))
        self.assertEqual(table.STALLED, rank(True, True, True, True))
        self.assertIsNone(rank(True, True, False, False))
        self.assertIsNone(rank(True, True, True, False))


class TableTest(test.TestCase):

    @hypothesis.settings(max_examples=300, deadline=None,
                         derandomize=True, database=None)
    @hypothesis.given(most=st.integers(1, 8), per=st.integers(1, 4),
                      ops=OPS)
    def test_the_one_closed_costs_a_scraper_least(self, most, per, ops):
        t = table.ConnectionTable(most, per)
        # the model: conn -> [address, rank, when it took that rank]
        model: dict = {}
        clock = 0
        order: list = []  # connections ever admitted, by arrival
        for op in ops:
            clock += 1
            if op[0] == 'connect':
                address = op[1]
                conn = ('c', clock)
                mine = [c for c, v in model.items() if v[0] == address]
                scope = mine if len(mine) >= per else (
                    list(model) if len(model) >= most else None)
                admitted, victim = t.admit(conn, address)
                if scope is None:
                    self.assertEqual((True, None), (admitted, victim))
                else:
                    candidates = [c for c in scope
                                  if model[c][1] is not None]
                    if not candidates:
                        self.assertEqual((False, None),
                                         (admitted, victim))
                        continue
                    best = min(candidates, key=lambda c: (
                        model[c][1], model[c][2]))
                    self.assertEqual((True, best), (admitted, victim))
                    del model[best]
                model[conn] = [address, table.STRANGER, clock]
                order.append(conn)
            elif op[0] == 'rank' and order:
                conn = order[op[1] % len(order)]
                t.set_rank(conn, op[2])
                if conn in model and model[conn][1] != op[2]:
                    model[conn][1:] = [op[2], clock]
            elif op[0] == 'leave' and order:
                conn = order[op[1] % len(order)]
                t.remove(conn)
                model.pop(conn, None)
            # the caps hold, and the table is the model
            self.assertLessEqual(len(t), most)
            self.assertEqual(set(model), set(t))
            for address in {v[0] for v in model.values()}:
                self.assertLessEqual(t.from_address(address), per)
            for conn, (_, rank, _) in model.items():
                self.assertEqual(rank, t.rank_of(conn))
