"""SOQL errors with Salesforce's codes and wording, including the caret block.

Salesforce prefixes most query errors with a window of the query text, a caret under the
offending token and ``ERROR at Row:R:Column:C`` (both 1-based), e.g.::

    \\nSELECT Foo FROM Account\\n       ^\\nERROR at Row:1:Column:8\\nNo such column 'Foo' ...

For long queries it shows only part of the line around the error: the window starts about
31 characters before the error (widened to the start of the word it lands in) and ends a
little after the offending token. That rule was fitted to error messages quoted in public
issue threads; Salesforce does not document it.
"""

from __future__ import annotations

# Characters of context Salesforce keeps before / after the offending token.
_BEFORE = 31
_AFTER = 28


class SoqlError(Exception):
    """A query Salesforce would reject: ``error_code`` and ``message`` as Salesforce sends them."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message


def _is_word(char: str) -> bool:
    return char.isalnum() or char in "_.'"


def row_column(text: str, offset: int) -> tuple[int, int, int, int]:
    """Return (row, column, line_start, line_end) of ``offset``; row and column are 1-based."""
    offset = max(0, min(offset, len(text)))
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    if line_end < 0:
        line_end = len(text)
    row = text.count("\n", 0, offset) + 1
    return row, offset - line_start + 1, line_start, line_end


def caret_block(text: str, offset: int, token_length: int = 1) -> str:
    """The ``\\n<window>\\n<caret>\\nERROR at Row:R:Column:C\\n`` prefix for ``offset``."""
    row, column, line_start, line_end = row_column(text, offset)
    start = max(line_start, offset - _BEFORE)
    while start > line_start and _is_word(text[start - 1]) and _is_word(text[start]):
        start -= 1
    end = min(line_end, offset + max(token_length, 1) + _AFTER)
    if end < line_end and _is_word(text[end - 1]) and _is_word(text[end]):
        # A token cut in half is dropped rather than shown partially.
        while end > offset + token_length and _is_word(text[end - 1]):
            end -= 1
    window = text[start:end].rstrip()
    caret = " " * (offset - start) + "^"
    return f"\n{window}\n{caret}\nERROR at Row:{row}:Column:{column}\n"


def located(code: str, text: str, offset: int, detail: str, token_length: int = 1) -> SoqlError:
    """A SoqlError whose message carries the caret block pointing at ``offset``."""
    return SoqlError(code, caret_block(text, offset, token_length) + detail)


def unexpected(text: str, offset: int, token: str) -> SoqlError:
    """MALFORMED_QUERY ``unexpected token: 'X'`` at ``offset`` (``<EOF>`` at the end)."""
    return located("MALFORMED_QUERY", text, offset, f"unexpected token: '{token}'", len(token))


def _unknown_name(code: str, text: str, offset: int, name: str, problem: str, *,
                  custom: str, suffix: str, after: str) -> SoqlError:
    """A name Salesforce does not know, with the advice it appends to each such error:
    check the custom `suffix` (``__c``, ``__r``) and the WSDL / describe names."""
    return located(
        code,
        text,
        offset,
        f"{problem}. If you are attempting to use a custom {custom}, be sure to append the "
        f"'{suffix}' after the {after}. Please reference your WSDL or the describe call for "
        "the appropriate names.",
        len(name),
    )


def no_such_column(text: str, offset: int, name: str, sobject: str) -> SoqlError:
    """INVALID_FIELD for a field the object lacks or the user cannot read."""
    return _unknown_name("INVALID_FIELD", text, offset, name,
                         f"No such column '{name}' on entity '{sobject}'",
                         custom="field", suffix="__c", after="custom field name")


def bad_relationship(text: str, offset: int, name: str) -> SoqlError:
    """INVALID_FIELD for an unknown parent relationship in a field path."""
    return _unknown_name("INVALID_FIELD", text, offset, name,
                         f"Didn't understand relationship '{name}' in field path",
                         custom="relationship", suffix="__r", after="custom relationship name")


def unsupported_sobject(text: str, offset: int, name: str) -> SoqlError:
    """INVALID_TYPE for an unknown (or invisible) object in FROM."""
    return _unknown_name("INVALID_TYPE", text, offset, name,
                         f"sObject type '{name}' is not supported",
                         custom="object", suffix="__c", after="entity name")
