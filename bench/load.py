"""The load a comparison run puts on a server: Postfix's smtp-source for
throughput, an asyncio client sending at a fixed rate for accept latency,
and an asyncio client holding idle connections for memory; plus a sampler
that keeps the peak of a server's memory while a run goes on.
"""

import asyncio
import subprocess
import threading
import time


def smtp_source(port, messages, sessions, size, sender, rcpt):
    """smtp-source: one message per session (its default), `sessions` at once."""
    subprocess.run(
        [
            "smtp-source", "-s", str(sessions), "-m", str(messages), "-l", str(size),
            "-f", sender, "-t", rcpt, f"127.0.0.1:{port}",
        ],
        check=True,
    )


class PeakMemory:
    """Samples `server.memory()` every `every` seconds in a thread; `peak` is
    the largest current figure seen (and the server's own peak, when it has one)."""

    def __init__(self, server, every=0.25):
        self.server, self.every, self.peak = server, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, *self.server.memory())
            self._stop.wait(self.every)

    def stop(self):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, *self.server.memory())
        return self.peak


async def _reply(reader):
    """One SMTP reply (multi-line too); returns its code."""
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("connection closed")
        if line[3:4] != b"-":
            return int(line[:3])


def latency(port, rate, connections, messages, size, sender, rcpt):
    """Offers `messages` at `rate` per second over `connections` sessions
    (several messages per session), each sent when due if a session is free;
    returns the seconds from the end of data (".") to the 250, per message."""
    body = b"Subject: latency\r\n\r\n" + (b"x" * 76 + b"\r\n") * max(1, size // 78) + b".\r\n"

    async def run():
        queue = asyncio.Queue()
        times = []

        async def session():
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await _reply(reader)
            writer.write(b"EHLO latency.bench.test\r\n")
            await writer.drain()
            await _reply(reader)
            while True:
                item = await queue.get()
                if item is None:
                    break
                writer.write(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
                await writer.drain()
                codes = [await _reply(reader) for _ in range(3)]
                if codes != [250, 250, 354]:
                    raise RuntimeError(f"unexpected replies {codes}")
                writer.write(body)
                await writer.drain()
                sent = time.perf_counter()
                code = await _reply(reader)
                times.append(time.perf_counter() - sent)
                if code != 250:
                    raise RuntimeError(f"end of data answered {code}")
            writer.write(b"QUIT\r\n")
            await writer.drain()
            writer.close()

        tasks = [asyncio.create_task(session()) for _ in range(connections)]
        start = time.perf_counter()
        for i in range(messages):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait(i)
        for _ in tasks:
            queue.put_nowait(None)
        await asyncio.gather(*tasks)
        return times

    return asyncio.run(run())


class IdleConnections:
    """Opens `count` SMTP connections (greeting read, EHLO answered) and
    holds them until `close()`; `opened` says how many got that far."""

    def __init__(self, port, count, parallel=100, each_timeout=60.0):
        self.port, self.count, self.parallel, self.each_timeout = port, count, parallel, each_timeout
        self.opened = 0
        self.failed = 0
        self._ready = threading.Event()
        self._release = None
        self._loop = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()

    async def _open(self, gate, writers):
        async with gate:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.port), self.each_timeout
                )
                await asyncio.wait_for(_reply(reader), self.each_timeout)
                writer.write(b"EHLO idle.bench.test\r\n")
                await writer.drain()
                code = await asyncio.wait_for(_reply(reader), self.each_timeout)
                if code != 250:
                    raise ConnectionError(f"EHLO answered {code}")
                writers.append(writer)
                self.opened += 1
            except (OSError, ConnectionError, asyncio.TimeoutError):
                self.failed += 1

    async def _main(self):
        self._loop = asyncio.get_running_loop()
        self._release = asyncio.Event()
        gate = asyncio.Semaphore(self.parallel)
        writers = []
        await asyncio.gather(*(self._open(gate, writers) for _ in range(self.count)))
        self._ready.set()
        await self._release.wait()
        for w in writers:
            w.close()

    def wait(self):
        """Blocks until every connection is open or has failed."""
        self._ready.wait()

    def close(self):
        self._loop.call_soon_threadsafe(self._release.set)
        self._thread.join()
