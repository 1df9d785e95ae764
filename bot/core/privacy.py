"""Masking of personal data for cards and exports (PIPL "minimum necessary")."""

from __future__ import annotations

import re

_MALE = ("先生",)
_FEMALE = ("女士", "小姐")
_DIGITS = re.compile(r"\d")


def mask_phone(phone: str | None) -> str:
    """``13812345678`` → ``138****5678``; shorter numbers keep 2 digits each end."""
    if not phone:
        return ""
    digits = "".join(_DIGITS.findall(phone))
    if len(digits) == 13 and digits.startswith("86"):  # +86 country code
        digits = digits[2:]
    if len(digits) >= 11:
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) >= 7:
        return f"{digits[:2]}****{digits[-2:]}"
    return "****"


def mask_name(name: str | None) -> str:
    """``张先生`` stays; ``张伟`` → ``张**``; a known title is kept: ``王女士``."""
    if not name:
        return ""
    name = name.strip()
    for title in (*_MALE, *_FEMALE):
        if name.endswith(title) and len(name) > len(title):
            return name[0] + title
    return name[0] + "**"


def mask_credit_code(code: str | None) -> str:
    """统一社会信用代码 ``91410223MA9XXXXXX1`` → ``914102**********X1`` (region kept)."""
    if not code:
        return ""
    code = code.strip()
    if len(code) <= 8:
        return "*" * len(code)
    return code[:6] + "*" * (len(code) - 8) + code[-2:]
