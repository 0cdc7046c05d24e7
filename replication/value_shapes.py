"""The shapes of personal values, for `repl init`'s bounded sample of production: e-mail
addresses, IP addresses, IBANs (ISO 13616, mod 97), payment card numbers (13 to 19
digits passing the Luhn check), US social security numbers, phone numbers, and free
text that contains an e-mail address or a phone number.

`classify` reads a column's sampled values and returns the shape most of them have, as
counts and words: no value leaves this module, and nothing here logs or keeps one.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

MIN_VALUES = 5  # fewer non-empty values say nothing about a column
# A fraction of shaped values that random data of that column's kind does not reach:
# one number in ten passes Luhn by chance, so cards need more than phones or e-mails.
MAJORITY = 0.6
CARD_MAJORITY = 0.8
# Free text (notes, messages) that holds an address or a number in this share of its
# values is personal, although most values are sentences.
EMBEDDED_SHARE = 0.1

_EMAIL = r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
_EMAIL_RE = re.compile(_EMAIL)
_EMAIL_SEARCH = re.compile(r"(?<![\w.%+'-])" + _EMAIL)
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
_CARD = re.compile(r"[0-9]{4}(?:[ -]?[0-9]{1,4}){2,4}|[0-9]{13,19}")
_SSN = re.compile(r"[0-9]{3}-[0-9]{2}-[0-9]{4}")
_PHONE_CHARS = re.compile(r"\+?[0-9 ().\-/]{7,24}")
_PHONE_SEARCH = re.compile(r"(?<![\w.])(?:\+|00)[1-9][0-9 ().\-]{7,20}[0-9]"
                           r"|(?<![\w.])0[1-9][0-9]{1,4}[ .\-/][0-9 .\-]{5,14}[0-9]")
_IP_CHARS = re.compile(r"[0-9A-Fa-f:.]*[.:][0-9A-Fa-f:.]*(?:%\S+)?")
_DATE = re.compile(r"[0-9]{1,4}[-./][0-9]{1,2}[-./][0-9]{1,4}")
_DECIMAL = re.compile(r"[0-9]+[.,][0-9]+")


def is_email(value: str) -> bool:
    return bool(_EMAIL_RE.fullmatch(value))


def is_ip(value: str) -> bool:
    if not _IP_CHARS.fullmatch(value):  # cheap, before ipaddress's exceptions
        return False
    try:
        ipaddress.ip_address(value.split("%", 1)[0])  # fe80::1%eth0: the zone is not part
    except ValueError:
        return False
    return True


def luhn(digits: str) -> bool:
    """The check digit of payment card numbers (ISO/IEC 7812)."""
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def is_card(value: str) -> bool:
    if not _CARD.fullmatch(value):
        return False
    digits = value.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and digits[0] != "0" and luhn(digits)


def is_iban(value: str) -> bool:
    """Country code, check digits, account; valid when the rearranged number is 1 mod 97."""
    compact = value.replace(" ", "").upper()
    if not _IBAN.fullmatch(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def is_ssn(value: str) -> bool:
    return bool(_SSN.fullmatch(value)) and not value.startswith(("000", "666", "9"))


def is_phone(value: str) -> bool:
    """+49 30 1234567, (030) 123-4567, 0612345678, 415 555 0199: 7 to 15 digits with a
    leading +, 0 or (, or in three groups or more. A plain number (an id, an amount), a
    date, an order number (2024-000123) and a zero-padded code are not phones."""
    if not _PHONE_CHARS.fullmatch(value) or _DATE.fullmatch(value) \
            or _DECIMAL.fullmatch(value):
        return False
    digits = re.sub(r"[^0-9]", "", value)
    if not 7 <= len(digits) <= 15:
        return False
    if value.startswith("+"):
        return True
    if value.startswith("00"):
        return len(digits) >= 10 and digits[2] != "0"  # 0049..., not 0000123
    if value.startswith(("0", "(")):
        return True
    return len(re.findall(r"[0-9]+", value)) >= 3  # 415 555 0199; not 2024-000123


def embeds_contact(value: str) -> bool:
    """Free text with an e-mail address or a phone number somewhere in it."""
    return bool(_EMAIL_SEARCH.search(value) or _PHONE_SEARCH.search(value))


@dataclass(frozen=True)
class Shape:
    kind: str  # a kind of detection.KINDS
    test: Callable[[str], bool]
    majority: float
    words: str  # "look like e-mail addresses"


# In order: an IP address is never taken for a phone number, an SSN never for a phone.
SHAPES = (
    Shape("email", is_email, MAJORITY, "look like e-mail addresses"),
    Shape("ip", is_ip, MAJORITY, "look like IP addresses"),
    Shape("bank_account", is_iban, MAJORITY, "are valid IBANs"),
    Shape("card", is_card, CARD_MAJORITY, "are card numbers passing the Luhn check"),
    Shape("national_id", is_ssn, MAJORITY, "look like social security numbers"),
    Shape("phone", is_phone, MAJORITY, "look like phone numbers"),
)


@dataclass(frozen=True)
class Verdict:
    """What a sample of one column shows: a kind and the rule, in counts."""

    kind: str
    rule: str


def _count(shape: Shape, sample: list[str]) -> int | None:
    """How many values have the shape, or None as soon as a majority is out of reach."""
    allowed_misses = len(sample) - math.ceil(shape.majority * len(sample))
    misses = 0
    for value in sample:
        if not shape.test(value):
            misses += 1
            if misses > allowed_misses:
                return None
    return len(sample) - misses


def classify(values: Iterable[str | None]) -> Verdict | None:
    """The shape most of the non-empty values have, or free text holding contacts."""
    sample = [v.strip() for v in values if v is not None and v.strip()]
    if len(sample) < MIN_VALUES:
        return None
    total = len(sample)
    for shape in SHAPES:
        if (hits := _count(shape, sample)) is not None:
            return Verdict(shape.kind, f"{hits} of {total} sampled {shape.words}")
    embedded = sum(1 for v in sample if embeds_contact(v))
    if embedded >= max(EMBEDDED_SHARE * total, 2):
        return Verdict("free_text", f"{embedded} of {total} sampled contain an e-mail "
                                    "address or a phone number")
    return None
