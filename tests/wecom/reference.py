"""An independent WeCom callback crypto, written from the published scheme on `cryptography`.

It shares no code with bot/channels/wecom/crypto.py (it uses cryptography's PKCS7 padder and
unpadder with 256-bit blocks, as the scheme states, and struct for the length), so the bot's
implementation is checked against the specification, not against itself.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# The example in Tencent's 加解密方案说明 and its sample libraries (VerifyURL).
SAMPLE = {
    "token": "QDG6eK",
    "aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    "corp_id": "wx5823bf96d3bd56c7",
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
    "echo_plain": "1616140317555161061",
}


def ref_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """sha1 of the four values, sorted as strings and concatenated."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


def _cipher(aes_key: str) -> Cipher[modes.CBC]:
    key = base64.b64decode(aes_key + "=")
    assert len(key) == 32
    return Cipher(algorithms.AES(key), modes.CBC(key[:16]))


def ref_encrypt(aes_key: str, corp_id: str, msg: bytes, *, block_bits: int = 256) -> str:
    """random(16) + msg_len (network order) + msg + corp id, PKCS#7, AES-256-CBC, base64."""
    plain = os.urandom(16) + struct.pack("!I", len(msg)) + msg + corp_id.encode()
    padder = padding.PKCS7(block_bits).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = _cipher(aes_key).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def ref_decrypt(aes_key: str, encrypt: str) -> tuple[bytes, str]:
    """(msg, receive id) from a ciphertext."""
    decryptor = _cipher(aes_key).decryptor()
    padded = decryptor.update(base64.b64decode(encrypt)) + decryptor.finalize()
    unpadder = padding.PKCS7(256).unpadder()
    plain = unpadder.update(padded) + unpadder.finalize()
    (length,) = struct.unpack("!I", plain[16:20])
    return plain[20 : 20 + length], plain[20 + length :].decode()


def ref_envelope(corp_id: str, agent_id: str, encrypt: str) -> bytes:
    """The POST body WeCom sends."""
    return (
        f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName>"
        f"<AgentID><![CDATA[{agent_id}]]></AgentID>"
        f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    ).encode()
