"""Who is connected to the exporter, and who makes room when it is full.

``ConnectionTable`` holds at most ``most`` connections, ``per_address``
from one address. When a new one finds its scope full (its address's share,
else the whole table), the connection that costs a scraper least is closed
for it: the lowest rank, and within a rank the one that has been in it
longest. A new connection is refused only when every connection of the
scope is being answered after it was let in, and is taking its answer.

``rank`` says what a connection costs a scraper if it is closed:

    answering  let in  verified  stalled  rank
    no         any     no        any      STRANGER: in its handshake or
                                          head, or idle after an answer
                                          without a password checked
                                          (without passwords, a 200 earns
                                          nothing)
    no         any     yes       any      IDLE: closing it costs a
                                          reconnect
    yes        no      any       any      STRANGER: waiting for its
                                          password check, or refused
    yes        yes     no        yes      STRANGER: not reading
    yes        yes     yes       yes      STALLED: not reading
    yes        yes     any       no       None: kept (a scrape)

"verified" is the last request let in with a password checked; "stalled",
the client takes nothing of its answer. Nothing here does I/O or knows
HTTP: connections are any hashable values.
"""

import collections

STRANGER, IDLE, STALLED = 0, 1, 2
RANKS = (STRANGER, IDLE, STALLED)


def rank(answering: bool, let_in: bool, verified: bool,
         stalled: bool) -> int | None:
    """A connection's rank (the table above); None: never closed to make
    room.
    """
    if not answering:
        return IDLE if verified else STRANGER
    if not let_in:
        return STRANGER
    if stalled:
        return STALLED if verified else STRANGER
    return None


class _Ranks:
    """Connections by rank, each rank oldest first."""

    def __init__(self):
        self.by_rank = [collections.OrderedDict() for _ in RANKS]
        self.count = 0

    def oldest(self):
        """The connection to close first, or None (every one is kept)."""
        for members in self.by_rank:
            for conn in members:
                return conn
        return None


class ConnectionTable:
    """The connections open, by rank, in the whole table and by address."""

    def __init__(self, most: int, per_address: int):
        self.most, self.per_address = most, per_address
        self._all = _Ranks()
        self._of: dict = {}  # address -> _Ranks
        self._where: dict = {}  # conn -> (address, rank or None)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, conn) -> bool:
        return conn in self._where

    def __iter__(self):
        """The connections open (a copy: closing them while iterating is
        allowed).
        """
        return iter(list(self._where))

    def addresses(self) -> int:
        return len(self._of)

    def from_address(self, address) -> int:
        mine = self._of.get(address)
        return 0 if mine is None else mine.count

    def admit(self, conn, address, initial: int | None = STRANGER):
        """Take ``conn`` from ``address``: (True, the connection closed
        to make room or None), or (False, None) when every connection of
        the full scope is kept. The one closed is out of the table already.
        """
        mine = self._of.get(address)
        scope = None
        if mine is not None and mine.count >= self.per_address:
            scope = mine
        elif len(self._where) >= self.most:
            scope = self._all
        victim = None
        if scope is not None:
            victim = scope.oldest()
            if victim is None:
                return False, None
            self.remove(victim)
            mine = self._of.get(address)
        if mine is None:
            mine = self._of[address] = _Ranks()
        self._where[conn] = (address, None)
        mine.count += 1
        self._all.count += 1
        self.set_rank(conn, initial)
        return True, victim

    def set_rank(self, conn, new: int | None) -> None:
        """``conn`` is now of rank ``new``; it becomes the newest of that
        rank unless it was of it already.
        """
        where = self._where.get(conn)
        if where is None:
            return
        address, old = where
        if old == new:
            return
        for ranks in (self._all, self._of[address]):
            if old is not None:
                del ranks.by_rank[old][conn]
            if new is not None:
                ranks.by_rank[new][conn] = None
        self._where[conn] = (address, new)

    def rank_of(self, conn) -> int | None:
        return self._where[conn][1]

    def remove(self, conn) -> None:
        """``conn`` is gone (again: nothing)."""
        where = self._where.pop(conn, None)
        if where is None:
            return
        address, old = where
        mine = self._of[address]
        for ranks in (self._all, mine):
            if old is not None:
                del ranks.by_rank[old][conn]
            ranks.count -= 1
        if not mine.count:
            del self._of[address]
