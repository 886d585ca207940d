"""Who may read: the exporter toolkit's handler, as middleware around an
app.

``WebHandler`` does, for each request, what the toolkit's ``webHandler``
does, in its order: the rate limit (429), the configured headers on every
response, then HTTP basic auth (401 with ``WWW-Authenticate``) before the
app is asked anything. ``/-/healthy`` passes without either, as a liveness
check must. It reads the web configuration current for each request.

A request that passes is let in (``Request.let_in``): the HTTP server then
keeps its connection while it is answered, and, when a password was
checked, while it waits for its next request.

Passwords (``Passwords``) are checked as the toolkit checks them (bcrypt,
one check at a time, an unknown user's password checked against a fixed
cost-10 hash, DECOY_HASH, whatever the file's costs) and remembered as it
remembers them, by a digest of user, hash and password; unlike the
toolkit:

- successes and failures are remembered apart, so no flood of wrong
  passwords can push out the credentials a scraper was let in with, and the
  memory survives a reload of the file (a changed hash is a new key);
- checks wait in one queue per client address, served in turn, so one
  address guessing cannot hold up another's first check; an address with
  more than ``PER_ADDRESS`` checks waiting gets 429 for further unknown
  credentials (known ones never wait, and never get 429);
- the same credentials sent by many clients at once cost one check.

Checks run on a thread of their own (bcrypt releases the interpreter while
it works), never on the event loop or the polls' threads. Nothing here
parses HTTP or talks to libvirt.
"""

import asyncio
import base64
import binascii
import collections
import hashlib
import logging
import time

import bcrypt

from nova.exporter.web import messages
from nova.exporter.web import rarelog

LOG = logging.getLogger(__name__)

# bcrypt reads 72 bytes of a password; Go's CompareHashAndPassword ignores
# the rest, and so do we (the bcrypt library refuses longer ones).
BCRYPT_MAX_PASSWORD = 72
HEALTHY_PATH = '/-/healthy'
# What a password of a user not in the file is checked against: a cost-10
# hash of a random password nobody knows (made once, for this purpose).
# One entry of cost 18 in the file thus never makes every unknown name
# cost 4 s of CPU; an unknown user costs an ordinary check.
DECOY_HASH = b'$2b$10$JQc0xKvWpBR0j4J9c5.SFOF9pWaWULH9KmFFxIUxxMUz9CUTXi5Te'


class RateLimiter:
    """Go's rate.Limiter as the toolkit uses it: a bucket of ``burst``
    tokens, one more every ``interval`` seconds; burst 0 refuses all.
    """

    def __init__(self, limit, clock=time.monotonic):
        self.limit, self._clock = limit, clock
        self._tokens = float(limit.burst)
        self._at = clock()

    def allow(self) -> bool:
        now = self._clock()
        self._tokens = min(float(self.limit.burst), self._tokens + (
            now - self._at) / self.limit.interval)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class Shed(Exception):
    """Too many checks wait for this client's address: 429."""


def basic_credentials(value: bytes | None) -> tuple[str, bytes] | None:
    """(user, password) of an Authorization header value, as Go's
    Request.BasicAuth reads it: "Basic " (any case) then standard base64
    of "user:password"; None for anything else (two spaces included).
    """
    if value is None or len(value) < 6 or value[:6].lower() != b'basic ':
        return None
    try:
        # Go's decoder skips CR and LF only; a header holds neither.
        decoded = base64.b64decode(value[6:], validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b':')
    if not sep:
        return None
    return user.decode('utf-8', 'surrogateescape'), password


def cache_key(user: str, hashed: bytes, password: bytes) -> bytes:
    """What identifies a check (the same key, the same outcome): each part
    hashed on its own, so no choice of user name and password can stand for
    another pair (the toolkit's CVE-2022-46146).
    """
    return hashlib.sha256(b''.join(
        hashlib.sha256(part).digest() for part in (
            user.encode('utf-8', 'surrogateescape'), hashed,
            password))).digest()


def check_password(password: bytes, hashed: bytes) -> bool:
    """One bcrypt check (tens of milliseconds of CPU by design)."""
    try:
        return bcrypt.checkpw(password[:BCRYPT_MAX_PASSWORD], hashed)
    except ValueError:  # a malformed hash is refused at load
        return False


class Passwords:
    """Checked credentials, remembered; checks queued fairly by address.

    ``check`` runs ``check_password`` on ``executor`` (one thread).
    """

    #: successes remembered: each is a (user, hash, password) that works
    VERIFIED = 256
    #: failures remembered, apart: a flood of them evicts only its own
    REFUSED = 4096
    #: checks one address may have waiting
    PER_ADDRESS = 8

    def __init__(self, executor, check=check_password):
        self._executor = executor
        self._check = check
        self._verified: collections.OrderedDict = collections.OrderedDict()
        self._refused: collections.OrderedDict = collections.OrderedDict()
        # key -> future of the check running or waiting
        self._pending: dict[bytes, asyncio.Future] = {}
        # address -> deque of (key, password, hashed) waiting, in turn
        self._queues: collections.OrderedDict = collections.OrderedDict()
        self._running = False
        self._rare = rarelog.RareLog(LOG)
        #: checks done, for tests and the bench
        self.checks = 0

    def known(self, key: bytes) -> bool | None:
        """The remembered outcome of ``key``'s credentials, or None."""
        if key in self._verified:
            self._verified.move_to_end(key)
            return True
        if key in self._refused:
            return False
        return None

    def keep_only(self, users: dict) -> None:
        """Forget successes of users no longer in the file, or whose hash
        changed (a reload); the rest stay verified.
        """
        for key, (user, hashed) in list(self._verified.items()):
            if users.get(user) != hashed:
                del self._verified[key]

    async def check(self, address: str, user: str, password: bytes,
                    hashed: bytes, real: bool) -> bool:
        """Whether ``password`` matches ``hashed`` (``real``: the user is
        in the file, else the outcome is False whatever bcrypt says).
        Shed when ``address`` already has PER_ADDRESS checks waiting.
        """
        key = cache_key(user, hashed, password)
        outcome = self.known(key)
        if outcome is not None:
            return outcome
        future = self._pending.get(key)
        if future is None:
            queue = self._queues.get(address)
            if queue is not None and len(queue) >= self.PER_ADDRESS:
                self._rare.warning(
                    'shed', f'More than {self.PER_ADDRESS} password checks '
                    'wait for one client address: its further requests '
                    'with unknown credentials get 429 until they drain (a '
                    'client guessing passwords?).')
                raise Shed()
            future = asyncio.get_running_loop().create_future()
            self._pending[key] = future
            self._queues.setdefault(address, collections.deque()).append(
                (key, user, password, hashed, real))
            self._next()
        return await asyncio.shield(future)

    def _next(self) -> None:
        """Start the next check, taking addresses in turn."""
        if self._running or not self._queues:
            return
        address, queue = next(iter(self._queues.items()))
        item = queue.popleft()
        del self._queues[address]
        if queue:
            self._queues[address] = queue  # to the back of the line
        self._running = True
        key, user, password, hashed, real = item
        done = asyncio.get_running_loop().run_in_executor(
            self._executor, self._check, password, hashed)
        done.add_done_callback(
            lambda f: self._checked(key, user, hashed, real, f))

    def _checked(self, key, user, hashed, real, done) -> None:
        self._running = False
        self.checks += 1
        ok = (not done.cancelled() and done.exception() is None and
              done.result() and real)
        if ok:
            self._verified[key] = (user, hashed)
            if len(self._verified) > self.VERIFIED:
                self._verified.popitem(last=False)
        else:
            self._refused[key] = None
            if len(self._refused) > self.REFUSED:
                self._refused.popitem(last=False)
        future = self._pending.pop(key, None)
        if future is not None and not future.done():
            future.set_result(bool(ok))
        self._next()


class WebHandler:
    """The toolkit's handler around ``app`` (an async callable taking a
    Request and giving a Response): ``web()`` gives the WebConfig current
    for each request; ``passwords`` checks and remembers credentials.
    """

    def __init__(self, app, web, passwords: Passwords):
        self._app = app
        self._web = web
        self.passwords = passwords
        self._limiter_for = None
        self._limiter = None
        self._users = None

    def _limited(self, config) -> bool:
        if config.rate_limit is None:
            return False
        if self._limiter_for != config.rate_limit:
            self._limiter_for = config.rate_limit
            self._limiter = RateLimiter(config.rate_limit)
        return not self._limiter.allow()

    async def __call__(self, request: messages.Request
                       ) -> messages.Response:
        config = self._web()
        if config.users is not self._users:
            # a reload: successes of users whose hash stayed are kept
            self._users = config.users
            self.passwords.keep_only(config.users)
        extra = [(name.lower().encode(), value.encode('latin-1'))
                 for name, value in config.headers]
        response = await self._serve(config, request)
        response.headers += extra
        return response

    async def _serve(self, config, request: messages.Request
                     ) -> messages.Response:
        if request.path == HEALTHY_PATH:
            request.let_in(verified=False)
            return await self._app(request)
        if self._limited(config):
            return messages.text(429, b'Too Many Requests\n')
        if not config.users:
            request.let_in(verified=False)
            return await self._app(request)
        credentials = basic_credentials(request.header(b'authorization'))
        if credentials is not None:
            user, password = credentials
            hashed = config.users.get(user)
            real = hashed is not None
            if not real:
                # No password of an unknown user passes; checking it
                # costs what an ordinary wrong password costs.
                hashed = DECOY_HASH
            try:
                ok = await self.passwords.check(request.peer, user,
                                                password, hashed, real)
            except Shed:
                return messages.text(
                    429, b'Too Many Requests: password checks wait.\n',
                    [(b'retry-after', b'1')])
            if ok:
                request.let_in(verified=True)
                return await self._app(request)
        return messages.text(401, b'Unauthorized\n',
                             [(b'www-authenticate',
                               b'Basic realm="nova-libvirt-exporter"')])
