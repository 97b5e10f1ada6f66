"""Loopback-only network for the `local` sandbox (`network: true`): the host's loopback servers, nothing else.

The sandbox keeps its own network namespace, which has no route out. For each TCP port (1024 and up)
that a host process listens on at loopback, read from /proc/net/tcp{,6} when a command starts, a
small forwarder inside the sandbox listens on the same port of the sandbox's own loopback and passes
each connection through a Unix socket to dialogforge, which connects to the host's 127.0.0.1:PORT.
Every other address stays unreachable. (`network: host` shares the host's network instead.)
"""
from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

# runs inside the sandbox: python3 -I -S -c FORWARDER SOCKDIR READY PORT...
FORWARDER = r'''
import asyncio, os, sys
sockdir, ready, ports = sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3:]]
async def pipe(r, w):
    try:
        while True:
            data = await r.read(65536)
            if not data:
                break
            w.write(data)
            await w.drain()
    except Exception:
        pass
    finally:
        try:
            w.close()
        except Exception:
            pass
def handler(port):
    async def serve(r, w):
        try:
            ur, uw = await asyncio.open_unix_connection(os.path.join(sockdir, "%d.sock" % port))
        except OSError:
            w.close()
            return
        await asyncio.gather(pipe(r, uw), pipe(ur, w))
    return serve
async def main():
    for p in ports:
        try:
            await asyncio.start_server(handler(p), "127.0.0.1", p)
        except OSError:
            pass
    open(ready, "w").close()
    await asyncio.Event().wait()
asyncio.run(main())
'''

_LOOPBACK = {"/proc/net/tcp": ("0100007F", "00000000"),
             "/proc/net/tcp6": ("00000000000000000000000001000000", "00000000000000000000000000000000")}


def loopback_ports() -> list[int]:
    """TCP ports (>= 1024) the host listens on at loopback (or on every address)."""
    ports: set[int] = set()
    for name, addrs in _LOOPBACK.items():
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for ln in lines:
            f = ln.split()
            if len(f) > 3 and f[3] == "0A":  # LISTEN
                addr, _, port = f[1].partition(":")
                if addr in addrs and int(port, 16) >= 1024:
                    ports.add(int(port, 16))
    return sorted(ports)


async def _pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            w.close()


class LoopbackBridge:
    """Host side: one Unix socket per forwarded port in `sockdir`; each connection piped to 127.0.0.1:PORT."""

    def __init__(self, sockdir: Path):
        self.sockdir = sockdir
        self.servers: dict[int, asyncio.AbstractServer] = {}

    async def ensure(self) -> list[int]:
        ports = await asyncio.to_thread(loopback_ports)
        for port in ports:
            if port in self.servers:
                continue
            path = self.sockdir / f"{port}.sock"

            async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter, port: int = port) -> None:
                try:
                    hr, hw = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    w.close()
                    return
                await asyncio.gather(_pipe(r, hw), _pipe(hr, w))

            self.servers[port] = await asyncio.start_unix_server(serve, path=str(path))
            os.chmod(path, 0o777)  # the sandbox's own uid connects to it
        return ports

    async def close(self) -> None:
        for s in self.servers.values():
            s.close()
        self.servers.clear()
