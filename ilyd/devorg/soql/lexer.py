"""SOQL tokenizer: identifiers, strings with SOQL escapes, numbers, date/datetime literals."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum

from ilyd.devorg.soql.errors import SoqlError, located


class TokenKind(StrEnum):
    """Lexical categories; keywords are IDENT tokens matched case-insensitively by the parser."""

    IDENT = "ident"
    STRING = "string"
    NUMBER = "number"
    DATE = "date"
    DATETIME = "datetime"
    OP = "op"
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    DOT = "."
    COLON = ":"
    EOF = "<EOF>"


@dataclass(frozen=True)
class Token:
    """One token: ``text`` as written, ``value`` decoded (strings, numbers, dates), ``pos``."""

    kind: TokenKind
    text: str
    pos: int
    value: object = None

    @property
    def upper(self) -> str:
        """The text upper-cased, for keyword matching."""
        return self.text.upper()


# SOQL string escapes (SOQL and SOSL reference, "Quoted String Escape Sequences"); \% and \_
# only mean something to LIKE, elsewhere they stand for the bare character.
ESCAPES = {
    "n": "\n", "N": "\n", "r": "\r", "R": "\r", "t": "\t", "T": "\t",
    "b": "\b", "B": "\b", "f": "\f", "F": "\f",
    '"': '"', "'": "'", "\\": "\\", "%": "%", "_": "_",
}
_DIGITS = frozenset("0123456789")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME = re.compile(r"T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?", re.IGNORECASE)
_OPS = ("!=", "<>", "<=", ">=", "=", "<", ">")
_PUNCT = {"(": TokenKind.LPAREN, ")": TokenKind.RPAREN, ",": TokenKind.COMMA,
          ".": TokenKind.DOT, ":": TokenKind.COLON}


def _lex_error(text: str, pos: int) -> SoqlError:
    """Salesforce's lexer wording for a character it cannot start a token with."""
    char = "<EOF>" if pos >= len(text) else text[pos]
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return located(
        "MALFORMED_QUERY", text, pos, f"line {line}:{column} no viable alternative at "
        f"character '{char}'"
    )


def _string(text: str, start: int) -> tuple[Token, int]:
    """Lex a single-quoted string starting at ``start`` (the quote)."""
    out: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "'":
            return Token(TokenKind.STRING, text[start : i + 1], start, "".join(out)), i + 1
        if char == "\\":
            if i + 1 >= len(text):
                break
            code = text[i + 1]
            if code in ESCAPES:
                out.append(ESCAPES[code])
                i += 2
                continue
            if code in "uU" and re.fullmatch(r"[0-9A-Fa-f]{4}", text[i + 2 : i + 6]):
                out.append(chr(int(text[i + 2 : i + 6], 16)))
                i += 6
                continue
            raw = text[start + 1 : text.find("'", i + 1) if "'" in text[i + 1 :] else len(text)]
            raise located(
                "MALFORMED_QUERY", text, start,
                f"Invalid string literal '{raw}'. Illegal character sequence "
                f"'\\{code}' in string literal.",
            )
        out.append(char)
        i += 1
    raise _lex_error(text, len(text))


def _datetime(text: str, pos: int) -> tuple[Token, int] | None:
    """Lex ``YYYY-MM-DD`` or ``YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm)`` at ``pos``, if present."""
    date_match = _DATE.match(text, pos)
    if date_match is None:
        return None
    end = date_match.end()
    try:
        day = dt.date(*(int(g) for g in date_match.groups()))
    except ValueError:
        raise _lex_error(text, pos) from None
    time_match = _TIME.match(text, end)
    if time_match is None:
        return Token(TokenKind.DATE, text[pos:end], pos, day), end
    hour, minute, second, fraction, zone = time_match.groups()
    if zone is None:
        # Salesforce's lexer needs the zone; it fails at the character after the time.
        raise _lex_error(text, time_match.end())
    offset = dt.timedelta(0)
    if zone.upper() != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    micro = round(float(fraction) * 1_000_000) if fraction else 0
    try:
        stamp = dt.datetime(
            day.year, day.month, day.day, int(hour), int(minute), int(second),
            min(micro, 999_999), tzinfo=dt.timezone(offset),
        ).astimezone(dt.UTC)
    except ValueError:
        raise _lex_error(text, end) from None
    end = time_match.end()
    return Token(TokenKind.DATETIME, text[pos:end], pos, stamp), end


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens ending with one EOF token; raises SoqlError."""
    tokens: list[Token] = []
    i, length = 0, len(text)
    while True:
        while i < length and text[i].isspace():
            i += 1
        if i >= length:
            tokens.append(Token(TokenKind.EOF, "<EOF>", length))
            return tokens
        char = text[i]
        if char == "'":
            token, i = _string(text, i)
        elif char in _DIGITS or (char in "+-." and i + 1 < length and text[i + 1] in _DIGITS):
            dated = _datetime(text, i) if char in _DIGITS else None
            if dated is not None:
                token, i = dated
            else:
                match = _NUMBER.match(text, i)
                assert match is not None  # a digit or sign+digit always starts a number
                raw = match.group()
                value: int | float = float(raw) if "." in raw else int(raw)
                token, i = Token(TokenKind.NUMBER, raw, i, value), match.end()
        elif (ident := _IDENT.match(text, i)) is not None:
            token, i = Token(TokenKind.IDENT, ident.group(), i), ident.end()
        elif char in _PUNCT:
            token, i = Token(_PUNCT[char], char, i), i + 1
        else:
            op = next((op for op in _OPS if text.startswith(op, i)), None)
            if op is None:
                raise _lex_error(text, i)
            token, i = Token(TokenKind.OP, op, i), i + len(op)
        tokens.append(token)
