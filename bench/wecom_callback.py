"""WeCom callback benchmark: encrypted POST → verified, decrypted, parsed, stored → 200.

    .venv/bin/python bench/wecom_callback.py [--requests 4000] [--concurrency 32]

Two servers on 127.0.0.1, each in its own process, in the same run: the real ``/wecom/callback``
route storing every message in SQLite through aiosqlite (WAL, synchronous=NORMAL as the bot's
database: one INSERT OR IGNORE committed per callback, before the 200), and a bare endpoint that
only finds the ciphertext, checks the signature and decrypts (no XML parser, no store). The client
(this process, aiohttp) signs and encrypts every message beforehand with unique MsgIds. Printed:
latency p50/p99 one request at a time, then throughput with ``--concurrency`` requests in flight,
the ratio of the two throughputs, and whether every message was stored once (lost 0, twice 0).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import aiosqlite
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.channels.wecom.callback import PATH, callback_app  # noqa: E402
from bot.channels.wecom.crypto import CallbackCrypto, CryptoError  # noqa: E402
from bot.channels.wecom.messages import Message  # noqa: E402

TOKEN = "yimiToken2026"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CORP = "ww0a1b2c3d4e5f6789"
MODES = {
    "grouped": "/wecom/callback + SQLite, group commit",
    "each": "/wecom/callback + SQLite, commit each",
    "bare": "bare endpoint: verify + decrypt only",
}
TEXT = "您好，我们是城关镇的机械厂，厂区变压器昨晚烧了，整条生产线停了，想请供电所尽快来看一下。"


class SqliteInbox:
    """The durable store: one row per message key, committed before the answer.

    ``group`` commits what arrived while the previous commit ran in one transaction (one
    multi-row INSERT OR IGNORE ... RETURNING), and answers each caller after that commit; without
    it every callback is its own INSERT and commit.
    """

    def __init__(self, conn: aiosqlite.Connection, *, group: bool) -> None:
        self.conn = conn
        self.group = group
        self.pending: list[tuple[str, str, asyncio.Future[bool]]] = []
        self.writer: asyncio.Task[None] | None = None
        self.commits = 0

    async def __call__(self, message: Message) -> bool:
        payload = getattr(message, "xml", "")
        if not self.group:
            cursor = await self.conn.execute(
                "INSERT OR IGNORE INTO inbox (key, payload, received_at) VALUES (?, ?, ?)",
                (message.key, payload, time.time()),
            )
            self.commits += 1
            return cursor.rowcount == 1
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.pending.append((message.key, payload, future))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        while self.pending:
            batch, self.pending = self.pending[:500], self.pending[500:]
            now = time.time()
            values = ",".join("(?, ?, ?)" for _ in batch)
            args = [x for key, payload, _ in batch for x in (key, payload, now)]
            try:
                cursor = await self.conn.execute(
                    f"INSERT OR IGNORE INTO inbox (key, payload, received_at) VALUES {values}"
                    " RETURNING key",
                    args,
                )
                new = {row[0] for row in await cursor.fetchall()}
                await cursor.close()
                self.commits += 1
            except aiosqlite.Error as exc:
                for _, _, future in batch:
                    future.set_exception(exc)
                continue
            for key, _, future in batch:
                future.set_result(key in new)
                new.discard(key)  # the same key twice in one batch: the second is a retry


async def open_inbox(path: Path, *, group: bool) -> SqliteInbox:
    conn = await aiosqlite.connect(path, isolation_level=None)  # autocommit: one statement
    await conn.execute("PRAGMA journal_mode = WAL")
    await conn.execute("PRAGMA synchronous = NORMAL")
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS inbox (key TEXT PRIMARY KEY, payload TEXT NOT NULL,"
        " received_at REAL NOT NULL)"
    )
    return SqliteInbox(conn, group=group)


def bare_app(crypto: CallbackCrypto) -> web.Application:
    """Only what cannot be skipped: the signature check and the decryption."""

    async def on_post(request: web.Request) -> web.StreamResponse:
        body = await request.text()
        start = body.find("<Encrypt><![CDATA[") + len("<Encrypt><![CDATA[")
        encrypt = body[start : body.find("]]>", start)]
        query = request.query
        try:
            crypto.open(query["msg_signature"], query["timestamp"], query["nonce"], encrypt)
        except (CryptoError, KeyError):
            return web.Response(status=403)
        return web.Response(text="")

    app = web.Application()
    app.router.add_post(PATH, on_post)
    return app


async def serve(mode: str, db: Path) -> None:
    """Run one server until stdin closes; print its port first."""
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP)
    inbox = await open_inbox(db, group=mode == "grouped")
    app = bare_app(crypto) if mode == "bare" else callback_app(crypto, inbox)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(runner.addresses[0][1], flush=True)
    try:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        await runner.cleanup()
        await inbox.conn.close()


def bodies(count: int, first_id: int) -> list[tuple[dict[str, str], bytes]]:
    """Signed, encrypted app text messages with unique MsgIds."""
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP)
    now = int(time.time())
    out = []
    for n in range(count):
        msg_id = first_id + n
        xml = (
            f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[firm{n % 500}]]>"
            f"</FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{TEXT}]]></Content><MsgId>{msg_id}</MsgId>"
            "<AgentID>1000002</AgentID></xml>"
        ).encode()
        nonce = str(msg_id)
        encrypt, signature = crypto.seal(xml, str(now), nonce)
        envelope = (
            f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><AgentID><![CDATA[1000002]]>"
            f"</AgentID><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        ).encode()
        out.append(({"msg_signature": signature, "timestamp": str(now), "nonce": nonce}, envelope))
    return out


async def post_all(
    url: str, work: list[tuple[dict[str, str], bytes]], concurrency: int
) -> tuple[list[float], float]:
    """Latencies of every request and the wall time, ``concurrency`` in flight."""
    latencies: list[float] = []
    queue = iter(work)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for params, body in queue:
                started = time.perf_counter()
                async with session.post(url, params=params, data=body) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"HTTP {resp.status}")
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


async def measure(
    mode: str, db: Path, requests: int, concurrency: int, first: int
) -> dict[str, float]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", mode, "--db", str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = f"http://127.0.0.1:{proc.stdout.readline().strip()}{PATH}"
        warm, lat_n = 200, min(1000, requests)
        await post_all(url, bodies(warm, first), 4)
        latencies, _ = await post_all(url, bodies(lat_n, first + warm), 1)
        burst, seconds = await post_all(url, bodies(requests, first + warm + lat_n), concurrency)
        return {
            "p50": pct(latencies, 50),
            "p99": pct(latencies, 99),
            "rps": requests / seconds,
            "burst_p99": pct(burst, 99),
            "sent": warm + lat_n + requests,
        }
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


async def count_rows(db: Path) -> tuple[int, int]:
    if not db.exists():
        return 0, 0
    async with (
        aiosqlite.connect(db) as conn,
        conn.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM inbox") as cursor,
    ):
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def main(requests: int, concurrency: int, rounds: int) -> None:
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    checks: dict[str, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):  # modes interleaved, so a busy moment hits all of them
            for n, mode in enumerate(MODES, 1):
                first = n * 10**15 + round_ * 10**9
                runs[mode].append(
                    await measure(mode, Path(tmp) / f"{mode}.db", requests, concurrency, first)
                )
        for mode in MODES:
            checks[mode] = await count_rows(Path(tmp) / f"{mode}.db")
    results = {
        mode: {key: statistics.median(r[key] for r in runs[mode]) for key in runs[mode][0]}
        for mode in MODES
    }
    print(
        f"WeCom callback round trip on 127.0.0.1: {requests} requests, {concurrency} in flight;"
        f" median of {rounds} interleaved rounds"
    )
    print(f"{'':44}{'p50 ms':>8}{'p99 ms':>8}{'req/s':>8}{'burst p99 ms':>14}")
    for mode, name in MODES.items():
        r = results[mode]
        print(f"{name:44}{r['p50']:8.2f}{r['p99']:8.2f}{r['rps']:8.0f}{r['burst_p99']:14.1f}")
    bare = results["bare"]["rps"]
    for mode in ("grouped", "each"):
        rows, distinct = checks[mode]
        sent = int(sum(r["sent"] for r in runs[mode]))
        print(
            f"{MODES[mode]}: {results[mode]['rps'] / bare:.2f} x the bare throughput (target"
            f" >= 0.5); {rows} rows for {sent} messages (lost {sent - distinct},"
            f" twice {rows - distinct})"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", choices=tuple(MODES))
    parser.add_argument("--db", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.serve:
        asyncio.run(serve(args.serve, args.db))
    else:
        asyncio.run(main(args.requests, args.concurrency, args.rounds))
