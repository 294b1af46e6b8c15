"""Transports written in Python, plugged into the library through its C transport hooks."""

import select
import socket
from typing import Optional


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
        be sent now."""
        raise NotImplementedError

    def recv_into(self, buffer: memoryview) -> Optional[int]:
        """Receives into `buffer` (valid only during the call); returns the count, 0 when the
        peer closed the connection, or None when nothing has arrived."""
        raise NotImplementedError

    def close(self) -> None:
        """Closes the connection `connect` opened (called once per successful connect)."""
        raise NotImplementedError

    def wait(self, timeout: float, want_write: bool) -> None:
        """Blocks until the connection is readable (or writable when `want_write`), or
        `timeout` seconds passed."""
        raise NotImplementedError


class SocketTransport(Transport):
    """TCP through Python's `socket` module: a blocking connect (like the built-in transport),
    then non-blocking sends and receives. Counts the bytes it carried."""

    def __init__(self, connect_timeout: float = 30.0) -> None:
        self.connect_timeout = connect_timeout
        self.sock: Optional[socket.socket] = None
        self.send_blocked = False
        self.connects = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    def connect(self, host: str, port: int) -> None:
        sock = socket.create_connection((host, port), timeout=self.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self.sock = sock
        self.send_blocked = False
        self.connects += 1

    def _socket(self) -> socket.socket:
        if self.sock is None:
            raise OSError("not connected")
        return self.sock

    def send(self, data: memoryview) -> Optional[int]:
        try:
            n = self._socket().send(data)
        except BlockingIOError:
            self.send_blocked = True
            return None
        self.send_blocked = False
        self.bytes_sent += n
        return n

    def recv_into(self, buffer: memoryview) -> Optional[int]:
        try:
            n = self._socket().recv_into(buffer)
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
        writers = [self.sock] if want_write or self.send_blocked else []
        select.select([self.sock], writers, [], timeout)
