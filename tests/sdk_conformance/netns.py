"""Runs a command in the current network namespace after bringing its loopback interface up.

Used as `unshare --net -- python netns.py CMD...`: a fresh namespace has `lo` down, and the SDK
can only reach the emulator on the fixed ports 8883 and 443, so a private namespace is what lets
this suite (and its nested tamper run) own those ports while other emulators run on the machine.
No `ip` binary is needed: the two ioctls below are all `ip link set lo up` does.
"""

import fcntl
import os
import socket
import struct
import sys

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: netns.py COMMAND [ARGS...]")
    loopback_up()
    os.execvp(sys.argv[1], sys.argv[1:])
