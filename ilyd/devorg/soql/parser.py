"""Recursive-descent SOQL parser producing the frozen AST in ``nodes``.

Grammar (the subset ilyd and its users send)::

    query     := SELECT items FROM ident [alias] [WHERE cond] [WITH SECURITY_ENFORCED]
                 [ORDER BY key ("," key)*] [LIMIT int] [OFFSET int] [FOR (VIEW|REFERENCE|UPDATE)]
    items     := COUNT "(" ")" | item ("," item)*
    item      := path | COUNT "(" path ")" [alias]
    cond      := [NOT] term ((AND term)* | (OR term)*)
    term      := "(" cond ")" | path op literal | path [NOT] IN "(" (literals | query) ")"
                 | path (INCLUDES | EXCLUDES) "(" literals ")"

SOQL has no precedence between AND and OR: mixing them without parentheses is a
MALFORMED_QUERY at the second operator, and NOT may only open a condition (``a AND NOT b``
is rejected, ``a AND (NOT b)`` is fine).
"""

from __future__ import annotations

from ilyd.devorg.soql.errors import SoqlError, located, unexpected
from ilyd.devorg.soql.lexer import Token, TokenKind, tokenize
from ilyd.devorg.soql.nodes import (
    And,
    Comparison,
    Condition,
    CountAll,
    CountField,
    FieldPath,
    Includes,
    InList,
    InSubquery,
    Literal,
    LiteralKind,
    Not,
    Or,
    OrderKey,
    Query,
    SelectItem,
)

# Relative date keywords (SOQL "Date Formats and Date Literals"); True = takes ":n".
DATE_KEYWORDS: dict[str, bool] = {
    name: False
    for name in (
        "YESTERDAY", "TODAY", "TOMORROW", "LAST_WEEK", "THIS_WEEK", "NEXT_WEEK",
        "LAST_MONTH", "THIS_MONTH", "NEXT_MONTH", "LAST_90_DAYS", "NEXT_90_DAYS",
        "THIS_QUARTER", "LAST_QUARTER", "NEXT_QUARTER", "THIS_YEAR", "LAST_YEAR", "NEXT_YEAR",
    )
} | {
    name: True
    for name in (
        "LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO", "N_DAYS_FROM_NOW", "LAST_N_WEEKS",
        "NEXT_N_WEEKS", "LAST_N_MONTHS", "NEXT_N_MONTHS", "LAST_N_YEARS", "NEXT_N_YEARS",
    )
}
# Words that end a field list or condition; never taken as field names.
_RESERVED = frozenset({
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "INCLUDES", "EXCLUDES",
    "ORDER", "BY", "ASC", "DESC", "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "GROUP",
    "HAVING", "WITH", "FOR", "NULL", "TRUE", "FALSE", "USING", "TYPEOF",
})
_COMPARISON_OPS = frozenset({"=", "!=", "<>", "<", ">", "<=", ">="})
MAX_OFFSET = 2000


class _Parser:
    """Holds the token stream; one instance parses one query text (and its sub-queries)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0

    # -- token helpers ---------------------------------------------------------------
    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def peek(self, ahead: int) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind is not TokenKind.EOF:
            self.index += 1
        return token

    def fail(self, token: Token | None = None) -> SoqlError:
        token = token or self.token
        return unexpected(self.text, token.pos, token.text)

    def is_keyword(self, *words: str) -> bool:
        return self.token.kind is TokenKind.IDENT and self.token.upper in words

    def keyword(self, word: str) -> Token:
        if not self.is_keyword(word):
            raise self.fail()
        return self.advance()

    def expect(self, kind: TokenKind) -> Token:
        if self.token.kind is not kind:
            raise self.fail()
        return self.advance()

    # -- grammar ---------------------------------------------------------------------
    def query(self, nested: bool = False) -> Query:
        self.keyword("SELECT")
        select = self.select_items()
        self.keyword("FROM")
        name = self.expect(TokenKind.IDENT)
        if name.upper in _RESERVED:
            raise self.fail(name)
        alias = None
        if self.token.kind is TokenKind.IDENT and self.token.upper not in _RESERVED:
            alias = self.advance().text
        where = None
        if self.is_keyword("WHERE"):
            self.advance()
            where = self.condition()
        if self.is_keyword("WITH"):
            self.advance()
            self.keyword("SECURITY_ENFORCED")
        order_by: tuple[OrderKey, ...] = ()
        if self.is_keyword("ORDER"):
            self.advance()
            self.keyword("BY")
            order_by = self.order_keys()
        limit = offset = None
        offset_pos = 0
        if self.is_keyword("LIMIT"):
            self.advance()
            limit = self.integer()
        if self.is_keyword("OFFSET"):
            offset_pos = self.advance().pos
            offset = self.integer()
        if self.is_keyword("FOR") and not nested:
            self.advance()
            if not self.is_keyword("VIEW", "REFERENCE", "UPDATE"):
                raise self.fail()
            self.advance()
        if not nested and self.token.kind is not TokenKind.EOF:
            raise self.fail()
        return Query(
            text=self.text, select=select, sobject=name.text, sobject_pos=name.pos, alias=alias,
            where=where, order_by=order_by, limit=limit, offset=offset, offset_pos=offset_pos,
        )

    def order_keys(self) -> tuple[OrderKey, ...]:
        keys: list[OrderKey] = []
        while True:
            path = self.field_path()
            descending = False
            if self.is_keyword("ASC", "DESC"):
                descending = self.advance().upper == "DESC"
            nulls_last = None
            if self.is_keyword("NULLS"):
                self.advance()
                if not self.is_keyword("FIRST", "LAST"):
                    raise self.fail()
                nulls_last = self.advance().upper == "LAST"
            keys.append(OrderKey(path, descending, nulls_last))
            if self.token.kind is not TokenKind.COMMA:
                return tuple(keys)
            self.advance()

    def integer(self) -> int:
        token = self.token
        if token.kind is not TokenKind.NUMBER or not isinstance(token.value, int) or (
            token.text[0] in "+-"
        ):
            raise self.fail()
        self.advance()
        return token.value

    def select_items(self) -> tuple[SelectItem, ...]:
        first = self.token
        if (
            self.is_keyword("COUNT")
            and self.peek(1).kind is TokenKind.LPAREN
            and self.peek(2).kind is TokenKind.RPAREN
        ):
            self.index += 3
            return (CountAll(first.pos),)
        items: list[SelectItem] = [self.select_item()]
        while self.token.kind is TokenKind.COMMA:
            self.advance()
            items.append(self.select_item())
        return tuple(items)

    def select_item(self) -> SelectItem:
        start = self.token
        if self.is_keyword("COUNT") and self.peek(1).kind is TokenKind.LPAREN:
            self.index += 2
            if self.token.kind is TokenKind.RPAREN:
                # COUNT() must stand alone in the select list.
                raise self.fail(start)
            path = self.field_path()
            self.expect(TokenKind.RPAREN)
            alias = None
            if self.token.kind is TokenKind.IDENT and self.token.upper not in _RESERVED:
                alias = self.advance().text
            return CountField(path, alias, start.pos)
        return self.field_path()

    def field_path(self) -> FieldPath:
        first = self.token
        if first.kind is not TokenKind.IDENT or first.upper in _RESERVED:
            raise self.fail()
        parts = [self.advance().text]
        while self.token.kind is TokenKind.DOT:
            self.advance()
            part = self.expect(TokenKind.IDENT)
            parts.append(part.text)
        return FieldPath(tuple(parts), first.pos)

    def condition(self) -> Condition:
        if self.is_keyword("NOT"):
            self.advance()
            first: Condition = Not(self.term())
        else:
            first = self.term()
        if not self.is_keyword("AND", "OR"):
            return first
        joiner = self.token.upper
        items = [first]
        while self.is_keyword("AND", "OR"):
            if self.token.upper != joiner:
                raise self.fail()
            self.advance()
            if self.is_keyword("NOT"):
                raise self.fail()
            items.append(self.term())
        return And(tuple(items)) if joiner == "AND" else Or(tuple(items))

    def term(self) -> Condition:
        if self.token.kind is TokenKind.LPAREN:
            self.advance()
            inner = self.condition()
            self.expect(TokenKind.RPAREN)
            return inner
        path = self.field_path()
        token = self.token
        if token.kind is TokenKind.OP:
            self.advance()
            op = "!=" if token.text == "<>" else token.text
            return Comparison(path, op, self.literal(), token.pos)
        if self.is_keyword("LIKE"):
            self.advance()
            return Comparison(path, "LIKE", self.literal(), token.pos)
        if self.is_keyword("INCLUDES", "EXCLUDES"):
            self.advance()
            excludes = token.upper == "EXCLUDES"
            return Includes(path, excludes, self.literal_list(), token.pos)
        negated = False
        if self.is_keyword("NOT"):
            self.advance()
            negated = True
            if not self.is_keyword("IN"):
                raise self.fail()
        if self.is_keyword("IN"):
            self.advance()
            if self.peek(1).kind is TokenKind.IDENT and self.peek(1).upper == "SELECT":
                self.expect(TokenKind.LPAREN)
                sub = self.query(nested=True)
                self.expect(TokenKind.RPAREN)
                return InSubquery(path, negated, sub, token.pos)
            return InList(path, negated, self.literal_list(), token.pos)
        raise self.fail()

    def literal_list(self) -> tuple[Literal, ...]:
        self.expect(TokenKind.LPAREN)
        values = [self.literal()]
        while self.token.kind is TokenKind.COMMA:
            self.advance()
            values.append(self.literal())
        self.expect(TokenKind.RPAREN)
        return tuple(values)

    def literal(self) -> Literal:
        token = self.token
        kind = token.kind
        if kind is TokenKind.STRING:
            self.advance()
            return Literal(LiteralKind.STRING, token.value, token.text[1:-1], token.pos)  # type: ignore[arg-type]
        if kind in (TokenKind.NUMBER, TokenKind.DATE, TokenKind.DATETIME):
            self.advance()
            literal_kind = {
                TokenKind.NUMBER: LiteralKind.NUMBER,
                TokenKind.DATE: LiteralKind.DATE,
                TokenKind.DATETIME: LiteralKind.DATETIME,
            }[kind]
            return Literal(literal_kind, token.value, token.text, token.pos)  # type: ignore[arg-type]
        if kind is TokenKind.IDENT:
            word = token.upper
            if word in ("TRUE", "FALSE"):
                self.advance()
                return Literal(LiteralKind.BOOLEAN, word == "TRUE", token.text, token.pos)
            if word == "NULL":
                self.advance()
                return Literal(LiteralKind.NULL, None, token.text, token.pos)
            if word in DATE_KEYWORDS:
                self.advance()
                n = None
                if DATE_KEYWORDS[word]:
                    self.expect(TokenKind.COLON)
                    n = self.integer()
                return Literal(LiteralKind.DATE_KEYWORD, (word, n), token.text, token.pos)
        raise self.fail()


def parse(text: str) -> Query:
    """Parse a SOQL query; raises SoqlError (MALFORMED_QUERY …) exactly as Salesforce words it."""
    if not isinstance(text, str) or not text.strip():
        raise SoqlError("MALFORMED_QUERY", "SOQL statements cannot be empty or null")
    query = _Parser(text).query()
    if query.offset is not None and query.offset > MAX_OFFSET:
        raise SoqlError(
            "NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}"
        )
    return query


__all__ = ["DATE_KEYWORDS", "located", "parse"]
