"""The asyncio transport of one client: it reads what the client's
ServerConnection (nova.exporter.web.protocol) has room for, writes what it
owes within a window, and keeps the time.

``Connection`` is the asyncio protocol nova.exporter.web.server makes for
each accepted socket. It decides nothing about HTTP or TLS: it hands bytes
to the ServerConnection and does what ``next_event`` says. What it adds:

- **reads** go into the server's one shared buffer, at most the
  connection's ``room`` at a time; reading pauses while there is none;
- **writes**: at most WRITE_WINDOW bytes wait in the transport; more are
  asked of the ServerConnection only as the client takes them;
- **time**: a client has ``client_timeout`` seconds to finish its handshake
  and send its request head, to send the next one on a kept connection,
  and to take each piece of an answer; then it is cut;
- **its rank** in the server's table (nova.exporter.web.table), told on
  each change: who is closed to make room.

Each request goes to the server's handler (a Request in, a Response out);
nothing here knows credentials, metrics or libvirt.
"""

import asyncio
import logging
import socket

from nova.exporter.web import messages
from nova.exporter.web import protocol
from nova.exporter.web import table

LOG = logging.getLogger(__name__)

READ_SIZE = protocol.RAW_WINDOW
# Bytes of answers waiting in the transport, at most (plus one TLS
# record's overhead): what the kernel's socket buffer did not take yet.
WRITE_WINDOW = 32 * 1024


class Connection(asyncio.BufferedProtocol):
    """One client's socket, driving its ServerConnection."""

    def __init__(self, server):
        self.server = server
        self.transport = None
        self.address = ''
        self.http: protocol.ServerConnection | None = None
        self.closed = False
        #: waiting in the server's handshake queue
        self.queued = False
        self._reading = True
        self._stalled = False  # the client takes nothing of its answer
        self._let_in = False  # the request answered was let in
        self._verified = False  # ... with a password checked
        self._timer = None
        self._task = None

    # -- events from asyncio --------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        peer = transport.get_extra_info('peername')
        self.address = peer[0] if isinstance(peer, tuple) else str(peer)
        if self.server.stopping or not self.server.admit(self):
            self.closed = True
            transport.abort()
            return
        # pause_writing once the window is full, resume once a quarter is
        # left: the window is checked before each write (_flush)
        transport.set_write_buffer_limits(high=WRITE_WINDOW - 1,
                                          low=WRITE_WINDOW // 4)
        sock = transport.get_extra_info('socket')
        if sock is not None and sock.family != socket.AF_UNIX:
            # asyncio sets it only on sockets it made itself: without it,
            # each answer waited for the client's delayed ACK (40 ms).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.http = protocol.ServerConnection(self.server.tls(),
                                              self.address)
        self._timing()

    def get_buffer(self, sizehint):
        # never empty: reading is paused while there is no room
        return self.server.read_view[:max(1, self.http.room)]

    def buffer_updated(self, nbytes):
        if self.closed:
            return
        self.http.receive_data(bytes(self.server.read_view[:nbytes]))
        self.pump()

    def eof_received(self):
        if not self.closed:
            self.http.receive_data(b'')
            self.pump()
        # keep the write side: the answers owed before the FIN go out
        return True

    def pause_writing(self):
        self._stalled = True
        self._changed()

    def resume_writing(self):
        # it took a piece: its time for the next starts again
        self._stalled = False
        self._cancel_deadline()
        self.pump()

    def connection_lost(self, exc):
        self._forget()

    # -- doing what the client's bytes ask ------------------------------------

    def pump(self) -> None:
        """Write what is owed, then do what ``next_event`` says until it
        waits for the client, the handler or the handshake queue.
        """
        while not self.closed:
            self._flush()
            if self.server.stopping and not self.http.busy and \
                    self.http.answered:
                self.close()  # answered: no next request once stopping
                return
            event = self.http.next_event()
            if isinstance(event, messages.Request):
                self._answer(event)
            elif event is protocol.HANDSHAKE:
                self.server.handshake_later(self)
            elif event is protocol.CLOSED:
                self._flush()
                self._log_refusal()
                self.close()
                return
            elif event is protocol.BUSY and self._flush() and \
                    not self.http.busy:
                continue  # an answer just made, and all taken: go on
            break
        self._changed()

    def handshake(self) -> None:
        """The handshake queue's turn for this connection."""
        if not self.closed:
            self.http.handshake()
            self.pump()

    def _window(self) -> int:
        """Bytes the transport may take now (0 once it is closing)."""
        if self.transport.is_closing():
            return 0
        return WRITE_WINDOW - self.transport.get_write_buffer_size()

    def _flush(self) -> bool:
        """Write what is owed, within the window; whether any was."""
        wrote = False
        while self.http.has_output:
            room = self._window()
            if room <= 0:
                break
            data = self.http.data_to_send(room)
            if not data:
                break
            self.transport.write(data)
            wrote = True
        return wrote

    def _answer(self, request: messages.Request) -> None:
        self._let_in = self._verified = False
        request.on_let_in = self._on_let_in
        self._task = self.server.loop.create_task(self._respond(request))

    def _on_let_in(self, verified: bool) -> None:
        self._let_in, self._verified = True, verified
        self._changed()

    async def _respond(self, request: messages.Request) -> None:
        failed = None
        try:
            response = await self.server.handler(request)
        except Exception as e:  # logged, never a traceback per request
            failed = str(e) or type(e).__name__
            response = messages.text(500, b'Internal Server Error.\n')
        if failed is not None:  # logged outside the except (oslo.log)
            more = self.server.rare.allow('handler')
            if more is not None:
                LOG.error('Answering %s %s failed: %s%s', request.method,
                          request.path, failed, more)
        self._task = None
        if self.closed:
            return
        self.http.send_response(response, ((b'date', self.server.date()),))
        self.pump()

    def _log_refusal(self) -> None:
        if self.http.refused is not None:
            kind, message = self.http.refused
            self.server.rare.warning(kind, message)

    # -- flow, rank and time --------------------------------------------------

    def _changed(self) -> None:
        """After any change: reading on or off, the rank, the deadline."""
        if self.closed:
            return
        http = self.http
        reading = http.room > 0
        if reading != self._reading and not self.transport.is_closing():
            self._reading = reading
            if reading:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()
        self.server.set_rank(self, table.rank(
            http.busy, self._let_in, self._verified, self._stalled))
        self._timing()

    def _timing(self) -> None:
        """A deadline while the connection waits for its client: its
        handshake and head, its next request, its taking an answer.
        """
        waiting = not self.http.busy or self._stalled
        if not waiting:
            self._cancel_deadline()
        elif self._timer is None:
            self._timer = self.server.loop.call_later(
                self.server.client_timeout, self._expired)

    def _cancel_deadline(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.closed:
            return
        if self._stalled:
            self.server.rare.warning(
                'slow', 'A client took nothing of its answer for '
                f'{self.server.client_timeout:g}s: closed.')
        elif self.http.busy:
            return
        self.abort()

    # -- ending ---------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """A request is being answered."""
        return self.http is not None and self.http.busy

    @property
    def fresh(self) -> bool:
        """Open, and no request answered yet (its first may be on its
        way).
        """
        return (not self.closed and self.http is not None and
                not self.http.answered)

    def _forget(self) -> None:
        if self.closed and self not in self.server.table:
            return
        self.closed = True
        self._cancel_deadline()
        self.server.forget(self)

    def close(self) -> None:
        """Close once what was written has gone (at most client_timeout
        later: a client that reads nothing is then cut).
        """
        self._forget()
        self.transport.close()
        if self.transport.get_write_buffer_size():
            self.server.loop.call_later(self.server.client_timeout,
                                        self.transport.abort)

    def abort(self) -> None:
        self._forget()
        self.transport.abort()
