"""A lean HTTP/1.1 client for the benchmarks' load: keep-alive connections on one asyncio
loop, one request at a time on each.

The load shares the server's two cores. httpx spends about half a millisecond of Python on
each request (its URL, header and request models, the transport's state machine, a thread
per client); a case step is about 6 ms of the server's. This client writes the request's
bytes and reads the status line, the headers and the body: tens of microseconds, so more of
the machine is the server's and the figure measures it, not its client.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


def encode(
    method: str, path: str, headers: dict[str, str] | None = None, body: Any = None
) -> bytes:
    """A request's bytes; `body` (if any) is sent as JSON."""
    data = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
    lines = [f"{method} {path} HTTP/1.1", "Host: bench"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


class Connection:
    """One keep-alive connection to `127.0.0.1:port`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        """(status, body) of the answer to `raw`."""
        self._writer.write(raw)
        head = await self._reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return int(head[9:12]), await self._reader.readexactly(length)

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()


async def send_once(port: int, raw: bytes) -> tuple[int, bytes]:
    """`raw` over a connection of its own: a phone's report, or a case's step, each opens
    one, so the workers' accepts spread the load (kept connections stay with one worker)."""
    connection = await Connection.open(port)
    try:
        return await connection.send(raw)
    finally:
        await connection.close()
