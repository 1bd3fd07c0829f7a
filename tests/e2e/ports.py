"""Ports for the servers a test starts.

A port taken with bind(0) comes from the ephemeral range, the same range the kernel gives
client sockets: between our close and the server's bind, any test's outgoing connection may
take it ("Address already in use"). These come from below that range instead, picked at
random so that tests running side by side rarely try the same one, and checked free.
"""

import random
import socket

LOW, HIGH = 20000, 32000


def free_port():
    for _ in range(200):
        port = random.randrange(LOW, HIGH)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError(f"no free port in {LOW}-{HIGH}")
