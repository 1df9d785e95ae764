"""WECOM_* settings: optional as a set, checked with one clear line, documented in .env.example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.config import Settings

FULL = {
    "WECOM_CORP_ID": "ww0a1b2c3d4e5f6789",
    "WECOM_AGENT_ID": "1000002",
    "WECOM_SECRET": "s3cret",
    "WECOM_TOKEN": "yimiToken2026",
    "WECOM_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
}


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for key in (*FULL, "WECOM_KF_ID", "WECOM_ADMIN_IDS", "WECOM_API_BASE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_without_wecom_keys_wecom_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    found = settings(monkeypatch, WECOM_ADMIN_IDS="zhangsan")
    assert found.wecom() is None
    assert (found.web_host, found.web_port) == ("127.0.0.1", 8088)
    assert settings(monkeypatch, **dict.fromkeys(FULL, "")).wecom() is None


def test_a_full_set(monkeypatch: pytest.MonkeyPatch) -> None:
    found = settings(
        monkeypatch, **FULL, WECOM_KF_ID="wkAbc", WECOM_ADMIN_IDS="zhangsan, lisi"
    ).wecom()
    assert found is not None
    assert (found.corp_id, found.agent_id, found.secret, found.kf_id) == (
        "ww0a1b2c3d4e5f6789",
        1000002,
        "s3cret",
        "wkAbc",
    )
    assert found.admin_ids == ("zhangsan", "lisi")
    assert found.api_base == "https://qyapi.weixin.qq.com"
    assert "s3cret" not in repr(settings(monkeypatch, **FULL))


def test_a_partial_set_names_what_is_missing_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    partial = {k: v for k, v in FULL.items() if k not in ("WECOM_SECRET", "WECOM_AGENT_ID")}
    with pytest.raises(ValueError) as caught:
        settings(monkeypatch, **partial).wecom()
    message = str(caught.value)
    assert "\n" not in message
    assert "WECOM_AGENT_ID, WECOM_SECRET missing" in message
    with pytest.raises(
        ValueError, match="WECOM_CORP_ID, WECOM_AGENT_ID, WECOM_SECRET, WECOM_TOKEN"
    ):
        settings(monkeypatch, WECOM_AES_KEY=FULL["WECOM_AES_KEY"]).wecom()


@pytest.mark.parametrize("key", ["short", FULL["WECOM_AES_KEY"] + "X", "+" * 43])
def test_a_malformed_aes_key_is_refused(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    with pytest.raises(ValidationError, match="43-character EncodingAESKey"):
        settings(monkeypatch, **{**FULL, "WECOM_AES_KEY": key})


def test_the_api_base_is_a_scheme_and_host(monkeypatch: pytest.MonkeyPatch) -> None:
    found = settings(monkeypatch, **FULL, WECOM_API_BASE="http://127.0.0.1:9000/").wecom()
    assert found is not None and found.api_base == "http://127.0.0.1:9000"
    for bad in ("https://qyapi.weixin.qq.com/cgi-bin", "qyapi.weixin.qq.com", "ftp://x"):
        with pytest.raises(ValidationError, match="WECOM_API_BASE"):
            settings(monkeypatch, **FULL, WECOM_API_BASE=bad)


def test_every_wecom_key_is_documented() -> None:
    example = (Path(__file__).parents[2] / ".env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^#? ?([A-Z_]+)=", example, flags=re.MULTILINE))
    wanted = {name.upper() for name in Settings.model_fields if name.startswith(("wecom_", "web_"))}
    assert wanted <= documented
