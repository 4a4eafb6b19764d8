"""Redaction of customer data in stored examples: e-mail addresses, phone numbers, IBANs and user-given regexes.

A sweep stores every example's input, target and output (the dashboard, `harness trial` and audits show them), and
these may hold customer data. With `redaction.enabled`, the stored copies have each match replaced, e.g. by
`[REDACTED:email]`. Scores are computed on the text as generated, before redaction, so redaction changes what is
stored, never a number.

The built-in patterns lean towards redacting too much: a false positive costs one readable example, a miss leaks
customer data. So any run of 7 to 15 digits in phone notation counts as a phone number, order numbers included;
dates, decimals, IP addresses and dot-grouped amounts are left alone.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.core.records import ExampleRow

if TYPE_CHECKING:
    from harness.core.config import RedactionConfig

DEFAULT_REPLACEMENT = "[REDACTED:{name}]"

EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@(?:[\w-]+\.)+[\w-]{2,}(?![\w-])")
"""local@domain.tld; Unicode letters count (internationalised addresses), the domain needs a dot."""

PHONE = re.compile(r"(?<![\w+/.,-])(?:\+|\(\+?)?(?:\d[ ()./-]{0,2}){6,14}\d(?!\w|[()./:-]\d)")
"""7 to 15 digits (E.164 allows 15) with an optional + or (, separated by at most two of space ( ) . / -:
`+44 20 7946 0958`, `(030) 1234-5678`, `0612345678`, `555-1234`. It never starts or ends inside a longer number,
so a longer run (a card number) is not cut into a fake phone number; a space-separated run longer than 15 digits is
cut into phone-sized pieces, so two numbers in a row are both found."""

IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}"                       # country code, check digits
                  r"(?:[ ]?[A-Za-z0-9]{4}){2,7}(?:[ ]?[A-Za-z0-9]{1,3})?"  # BBAN, compact or in groups of four
                  r"(?![A-Za-z0-9])")
"""ISO 13616 shape: country code, two check digits, then an 11 to 30 character BBAN, compact or printed in groups
of four (`DE89 3704 0044 0532 0130 00`). The check digits are not verified: a mistyped IBAN is customer data too."""

_NOT_A_PHONE = re.compile(
    r"\d{4}[-./]\d{1,2}[-./]\d{1,2}"      # ISO date 2024-01-15
    r"|\d{1,2}[-./]\d{1,2}[-./]\d{4}"     # 15.01.2024, 01/15/2024
    r"|\d+\.\d+"                          # a decimal number
    r"|\d{1,3}(?:\.\d{1,3}){3}"           # an IPv4 address
    r"|\d{1,3}(?:\.\d{3})+"               # an amount grouped by dots: 1.234.567
)  # fmt: skip


def _not_a_phone(text: str) -> bool:
    return _NOT_A_PHONE.fullmatch(text) is not None


def _not_an_iban(text: str) -> bool:
    bban = text.replace(" ", "")[4:]
    return not 11 <= len(bban) <= 30 or sum(c.isdigit() for c in bban) < 6  # every BBAN holds an account number


@dataclass(frozen=True)
class Rule:
    name: str
    """Names the rule in the replacement: `[REDACTED:phone]`; user regexes are `regex1`, `regex2`, ..."""
    pattern: re.Pattern[str]
    keep: Callable[[str], bool] | None = None
    """True for a match that only looks like one (a date that the phone pattern finds): it stays as it is."""


PATTERNS = {
    "email": Rule("email", EMAIL),
    "iban": Rule("iban", IBAN, _not_an_iban),
    "phone": Rule("phone", PHONE, _not_a_phone),
}
"""The built-in patterns, in the order they run: an e-mail address first (its local part may hold digits), an IBAN
before a phone number (its digits would look like one)."""


def regex_problem(regex: str) -> str | None:
    """Why a user-given regex cannot redact anything safely, or None when it can."""
    try:
        compiled = re.compile(regex)
    except re.error as exc:
        return f"is not a valid regular expression ({exc})"
    if compiled.fullmatch(""):
        return "matches the empty text, so it would insert the replacement between every two characters"
    return None


@dataclass(frozen=True)
class Redactor:
    """Replaces every match of its rules; with no rules (redaction off) it returns the text unchanged."""

    rules: tuple[Rule, ...] = ()
    replacement: str = DEFAULT_REPLACEMENT

    @classmethod
    def from_config(cls, config: RedactionConfig) -> Redactor:
        if not config.enabled:
            return cls()
        custom = tuple(Rule(f"regex{i}", re.compile(regex)) for i, regex in enumerate(config.regexes, 1))
        built_in = tuple(rule for name, rule in PATTERNS.items() if name in config.patterns)
        return cls(custom + built_in, config.replacement)  # the user's own first: theirs are the specific ones

    @property
    def enabled(self) -> bool:
        return bool(self.rules)

    def redact(self, text: str) -> str:
        for rule in self.rules:
            mark = self.replacement.format(name=rule.name)
            # A function, not a template: backslashes and group references in the replacement stay literal.
            text = rule.pattern.sub(lambda m: m[0] if rule.keep and rule.keep(m[0]) else mark, text)
        return text


def redact_rows(rows: Iterable[ExampleRow], redactor: Redactor) -> list[ExampleRow]:
    """Copies of `rows` with input, target, output and error redacted, ready to store. Scores are kept as they are:
    they were computed on the text before redaction."""
    if not redactor.enabled:
        return list(rows)
    return [dataclasses.replace(row, input=redactor.redact(row.input), target=redactor.redact(row.target),
                                output=redactor.redact(row.output),
                                error=None if row.error is None else redactor.redact(row.error))
            for row in rows]
