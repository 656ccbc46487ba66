"""Where a server listens: the port option's type, and why an address cannot be listened on.

Shared by ``vf-mcp emulator`` and the HTTP servers of ``vf-mcp`` (which may import the emulator,
never the other way round), so a busy port reads the same whichever command met it.
"""

from __future__ import annotations

import argparse
import errno
import socket


def port_number(text: str, *, lowest: int = 0) -> int:
    """argparse type: a TCP port, from `lowest` (0 = any free port, where that is allowed)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not lowest <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from {lowest} to 65535")
    return value


def server_port(text: str) -> int:
    """argparse type for a server that announces its address, so it needs a fixed port."""
    return port_number(text, lowest=1)


def shown_host(host: str) -> str:
    """`host` as it reads in a URL (IPv6 in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def listen_problem(host: str, port: int, error: OSError) -> str:
    """One line: which address could not be listened on, why, and what to do instead."""
    where = f"cannot listen on {shown_host(host)}:{port}"
    if isinstance(error, socket.gaierror):
        return (
            f"{where}: {host!r} is not an address or a host name this machine resolves "
            f"({error.strerror}); pass --host 127.0.0.1, or another address of this machine"
        )
    if error.errno == errno.EADDRINUSE:
        return (
            f"{where}: another process is already listening on port {port}; stop it, or "
            "choose another port with --port"
        )
    if error.errno == errno.EADDRNOTAVAIL:
        return (
            f"{where}: {host} is not an address of this machine; pass --host 127.0.0.1, or "
            "another address of this machine"
        )
    if error.errno == errno.EACCES:
        return f"{where}: port {port} needs privileges; choose a port above 1023 with --port"
    return f"{where}: {error.strerror or error}; choose another --host or --port"


def bind_all(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to every address `host` resolves to, as asyncio's `create_server` would bind
    them (to listen on, or to close); raises the `OSError` serving there would meet."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    bound: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            bound.append(sock)
            # The options asyncio sets, so the answer is the one uvicorn would get.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except BaseException:
        for sock in bound:
            sock.close()
        raise
    return bound
