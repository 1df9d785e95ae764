"""Callback crypto against Tencent's published example and an independent implementation."""

from __future__ import annotations

import base64
import time

import pytest

from bot.channels.wecom.crypto import (
    MAX_AGE,
    BadCiphertext,
    BadSignature,
    CallbackCrypto,
    Replayed,
    WrongReceiver,
    decode_aes_key,
    signature,
)
from tests.wecom.reference import SAMPLE, ref_decrypt, ref_encrypt, ref_signature

TOKEN = "yimiToken2026"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CORP = "ww0a1b2c3d4e5f6789"


def sample_crypto() -> CallbackCrypto:
    return CallbackCrypto(
        SAMPLE["token"], SAMPLE["aes_key"], SAMPLE["corp_id"], clock=lambda: 1409659600.0
    )


def test_the_published_example_verifies_and_decrypts() -> None:
    crypto = sample_crypto()
    plain = crypto.open(
        SAMPLE["msg_signature"], SAMPLE["timestamp"], SAMPLE["nonce"], SAMPLE["echostr"]
    )
    assert plain.decode() == SAMPLE["echo_plain"]
    assert (
        signature(SAMPLE["token"], SAMPLE["timestamp"], SAMPLE["nonce"], SAMPLE["echostr"])
        == SAMPLE["msg_signature"]
    )


@pytest.mark.parametrize("block_bits", [256, 128])
def test_decrypts_what_the_reference_encrypts(block_bits: int) -> None:
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP)
    for msg in (b"", b"x", "<xml><Content>厂里停电了</Content></xml>".encode(), b"a" * 4000):
        encrypt = ref_encrypt(AES_KEY, CORP, msg, block_bits=block_bits)
        assert crypto.decrypt(encrypt) == msg


def test_the_reference_decrypts_what_the_bot_encrypts_padded_to_32() -> None:
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP)
    for size in range(0, 70):
        msg = ("字" * size).encode()
        encrypt = crypto.encrypt(msg)
        raw = base64.b64decode(encrypt)
        assert len(raw) % 32 == 0
        assert ref_decrypt(AES_KEY, encrypt) == (msg, CORP)


def test_signatures_agree_with_the_reference() -> None:
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP)
    encrypt = crypto.encrypt(b"<xml/>")
    assert crypto.sign("1700000000", "123", encrypt) == ref_signature(
        TOKEN, "1700000000", "123", encrypt
    )


def test_a_bad_signature_is_refused() -> None:
    now = time.time()
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP, clock=lambda: now)
    ts = str(int(now))
    encrypt = ref_encrypt(AES_KEY, CORP, b"<xml/>")
    good = ref_signature(TOKEN, ts, "n1", encrypt)
    crypto.verify(good, ts, "n1", encrypt)
    crypto.verify(good.upper(), ts, "n1", encrypt)  # hex case does not matter
    for bad in ("", "0" * 40, good[:-1] + ("0" if good[-1] != "0" else "1"), "签名"):
        with pytest.raises(BadSignature):
            crypto.verify(bad, ts, "n1", encrypt)
    with pytest.raises(BadSignature):  # another nonce, same signature
        crypto.verify(good, ts, "n2", encrypt)
    with pytest.raises(BadSignature):  # signed with another token
        crypto.verify(ref_signature("other", ts, "n1", encrypt), ts, "n1", encrypt)


def test_old_and_far_future_timestamps_are_refused_as_replays() -> None:
    now = 1_800_000_000.0
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP, clock=lambda: now)
    encrypt = ref_encrypt(AES_KEY, CORP, b"<xml/>")
    for offset in (0, -MAX_AGE, MAX_AGE, -60):
        ts = str(int(now) + offset)
        crypto.verify(ref_signature(TOKEN, ts, "n", encrypt), ts, "n", encrypt)
    for offset in (-MAX_AGE - 1, -3600, MAX_AGE + 1):
        ts = str(int(now) + offset)
        with pytest.raises(Replayed):
            crypto.verify(ref_signature(TOKEN, ts, "n", encrypt), ts, "n", encrypt)
    for ts in ("", "abc", "-5", "1.5"):
        with pytest.raises(Replayed):
            crypto.verify(ref_signature(TOKEN, ts, "n", encrypt), ts, "n", encrypt)


def test_a_message_for_another_corp_id_is_refused() -> None:
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP)
    for other in ("ww_other_corp", CORP + "x", CORP[:-1], ""):
        with pytest.raises(WrongReceiver):
            crypto.decrypt(ref_encrypt(AES_KEY, other, b"<xml/>"))


def test_garbage_ciphertexts_are_refused() -> None:
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP)
    other_key = "B" * 43
    for bad in (
        "",
        "not base64!",
        base64.b64encode(b"short").decode(),
        base64.b64encode(b"\0" * 48).decode(),
        ref_encrypt(other_key, CORP, b"<xml/>"),
    ):
        with pytest.raises((BadCiphertext, WrongReceiver)):
            crypto.decrypt(bad)


def test_aes_keys_are_validated() -> None:
    assert len(decode_aes_key(AES_KEY)) == 32
    for bad in ("", "short", AES_KEY + "A", AES_KEY[:-1] + "+", AES_KEY[:-1] + "="):
        with pytest.raises(ValueError):
            decode_aes_key(bad)
    with pytest.raises(ValueError):
        CallbackCrypto("", AES_KEY, CORP)
    with pytest.raises(ValueError):
        CallbackCrypto(TOKEN, AES_KEY, "")
