"""Transports written in Python, plugged into the library through its C transport hooks."""

import errno
import os
import select
import socket
import time
from typing import Optional

# What a non-blocking connect returns while the handshake is under way (Windows: its own code).
_CONNECT_PENDING = (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY,
                    getattr(errno, "WSAEWOULDBLOCK", errno.EWOULDBLOCK))


class Transport:
    """The byte stream the library speaks MQTT (over TLS) on: subclass it to use a modem, a
    tunnel or a test double instead of the library's built-in TCP transport.

    The library calls these methods from inside `ProvisioningClient.register()`, on the
    calling thread. An `OSError` raised by `connect`, `send` or `recv_into` is a transport
    failure: the library reconnects or ends with a `TransportError` whose `__cause__` is the
    last such error, and whose message carries `error_detail(error)`. Any other exception
    aborts the registration and is re-raised from `register()`.
    """

    def error_detail(self, error: OSError) -> str:
        """The text the library shows for a transport failure (in its log, the result
        detail and the exception message): the OS's description, e.g. "Connection refused".
        Override to say more."""
        return error.strerror or str(error) or type(error).__name__

    def connect(self, host: str, port: int) -> None:
        """Opens a connection to host:port. May return before it is up: `send` and
        `recv_into` then return None until it is."""
        raise NotImplementedError

    def send(self, data: memoryview) -> Optional[int]:
        """Sends a prefix of `data`; returns the count sent (> 0), or None when nothing can
        be sent now. Any other value (a negative number, more than len(data), not an int) is
        a transport failure, as an OSError is."""
        raise NotImplementedError

    def recv_into(self, buffer: memoryview) -> Optional[int]:
        """Receives into `buffer` (valid only during the call); returns the count, 0 when the
        peer closed the connection, or None when nothing has arrived. Any other value is a
        transport failure, as an OSError is."""
        raise NotImplementedError

    def close(self) -> None:
        """Closes the connection `connect` opened (called once per successful connect)."""
        raise NotImplementedError

    def wait(self, timeout: float, want_write: bool) -> None:
        """Blocks until the connection is readable (or writable when `want_write`), or
        `timeout` seconds passed."""
        raise NotImplementedError


class SocketTransport(Transport):
    """TCP through Python's `socket` module, never blocking: `connect` resolves the name and
    starts the TCP handshake, which completes while the registration waits (so it is bounded
    by the registration's deadline, and `cancel()` or a signal ends it at once, as any other
    wait). Counts the bytes it carried.

    `connect_timeout` (seconds, None: no limit of its own) ends a handshake that takes longer
    with a `TimeoutError`, a transport failure after which the library reconnects."""

    def __init__(self, connect_timeout: Optional[float] = None) -> None:
        self.connect_timeout = connect_timeout
        self.sock: Optional[socket.socket] = None
        self.send_blocked = False
        self.connecting = False
        self._connect_started = 0.0
        self.connects = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    def connect(self, host: str, port: int) -> None:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            code = sock.connect_ex(address)
            if code not in _CONNECT_PENDING:
                raise OSError(code, os.strerror(code))
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.connecting = code != 0
        self._connect_started = time.monotonic()
        self.send_blocked = False
        self.connects += 1

    def _socket(self) -> Optional[socket.socket]:
        """The socket once connected; None while the handshake is still under way."""
        if self.sock is None:
            raise OSError("not connected")
        if self.connecting:
            _, writable, _ = select.select([], [self.sock], [], 0)
            if not writable:
                if (self.connect_timeout is not None and
                        time.monotonic() - self._connect_started > self.connect_timeout):
                    raise TimeoutError(errno.ETIMEDOUT, "connect timed out")
                return None
            code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, os.strerror(code))
            self.connecting = False
        return self.sock

    def send(self, data: memoryview) -> Optional[int]:
        sock = self._socket()
        if sock is None:
            return None
        try:
            n = sock.send(data)
        except BlockingIOError:
            self.send_blocked = True
            return None
        self.send_blocked = False
        self.bytes_sent += n
        return n

    def recv_into(self, buffer: memoryview) -> Optional[int]:
        sock = self._socket()
        if sock is None:
            return None
        try:
            n = sock.recv_into(buffer)
        except BlockingIOError:
            return None
        except ConnectionResetError:
            # A server that closes with our bytes unread resets instead of closing: the peer
            # is gone either way, and the answer it already sent must still be read.
            return 0
        self.bytes_received += n
        return n

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def wait(self, timeout: float, want_write: bool) -> None:
        if self.sock is None:
            select.select([], [], [], timeout)
            return
        writers = [self.sock] if want_write or self.send_blocked or self.connecting else []
        select.select([self.sock], writers, [], timeout)
