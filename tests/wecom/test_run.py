"""`yimi-bot run` with only the WECOM_* settings: a real process serving the callback URL, its
answers going to the fake WeCom server through the API, stopped cleanly by SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path

from bot.channels.simulator.fakewecom import FakeWeCom


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_for(check, seconds: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_run_serves_wecom_alone(tmp_path: Path) -> None:
    async with FakeWeCom() as fake:
        fake.add_department(5, "企业服务专班")
        fake.add_member("boss", "赵主任", [5])
        port = _free_port()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path),
            "DATABASE_PATH": str(tmp_path / "yimi.db"),
            "WECOM_CORP_ID": fake.corp_id,
            "WECOM_AGENT_ID": str(fake.agent_id),
            "WECOM_SECRET": fake.secret,
            "WECOM_TOKEN": fake.token,
            "WECOM_AES_KEY": fake.aes_key,
            "WECOM_KF_ID": fake.open_kfid,
            "WECOM_ADMIN_IDS": "boss",
            "WECOM_API_BASE": fake.base_url,
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(port),
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run",
            cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            fake.callback_url = f"http://127.0.0.1:{port}/wecom/callback"

            async def up() -> bool:
                try:
                    return (await fake.verify_url("hello")).body == b"hello"
                except OSError:
                    return False

            deadline = time.monotonic() + 30
            while not await up():
                assert proc.returncode is None, "yimi-bot run exited"
                assert time.monotonic() < deadline, "the callback URL never answered"
                await asyncio.sleep(0.2)
            assert (await fake.member_writes("boss", "/teams")).status == 200
            assert await _wait_for(
                lambda: any("群组绑定情况" in m.text for m in fake.chats["boss"])
            )
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            out, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, out.decode()
        assert "企业微信" in out.decode()
