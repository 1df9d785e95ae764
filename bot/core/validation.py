"""Validation of what firms type: mobile numbers and 统一社会信用代码 (GB 32100-2015)."""

from __future__ import annotations

import re

_CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_MOBILE = re.compile(r"1[3-9]\d{9}")
_FULLWIDTH = str.maketrans("０１２３４５６７８９＋－　", "0123456789+- ")


def normalize_phone(text: str) -> str | None:
    """A mainland mobile number as 11 digits, or None when it is not one."""
    digits = re.sub(r"[\s\-()（）]", "", text.translate(_FULLWIDTH))
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits if _MOBILE.fullmatch(digits) else None


def credit_code_check_char(first17: str) -> str | None:
    """The check character for the first 17 characters, or None if they use invalid characters."""
    total = 0
    for char, weight in zip(first17, _CODE_WEIGHTS, strict=True):
        index = _CODE_CHARS.find(char)
        if index < 0:
            return None
        total += index * weight
    return _CODE_CHARS[(31 - total % 31) % 31]


def normalize_credit_code(text: str) -> str | None:
    """An 18-character 统一社会信用代码 with a valid check digit, upper-cased; else None."""
    code = re.sub(r"\s", "", text.translate(_FULLWIDTH)).upper()
    if len(code) != 18:
        return None
    expected = credit_code_check_char(code[:17])
    return code if expected is not None and expected == code[17] else None
