"""Enough of WIQL for the sandbox: flat queries over work items.

SELECT [f], … FROM WorkItems [WHERE condition] [ORDER BY [f] [ASC|DESC], …], where a condition
joins comparisons with AND, OR, NOT and parentheses; operators =, <>, <, >, <=, >=, CONTAINS,
CONTAINS WORDS, IN, UNDER (each with NOT); values are 'text', numbers, @project, @me and
@today [+|- days]. What it does not know it refuses, as the service refuses a bad query: 400.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Callable

from adobot.sandbox import errors

_TOKEN = re.compile(r"""\s*(?:(?P<field>\[[^\]]+\])|(?P<text>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)
                     |(?P<macro>@\w+)|(?P<op><>|<=|>=|=|<|>|\(|\)|,|\+|-)|(?P<word>[A-Za-z_]\w*))""",
                    re.VERBOSE)
Item = Any  # adobot.sandbox.state.WorkItem
Test = Callable[[Item], bool]


@dataclass
class Query:
    fields: list[str]
    where: Test
    order: list[tuple[str, bool]]  # (field, descending)
    referenced: set[str]


def _tokens(text: str) -> list[tuple[str, str]]:
    found, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise errors.wiql_syntax(f"The error is caused by \u00ab{text[position:position + 20]}\u00bb.")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


class _Parser:
    def __init__(self, text: str, macros: dict[str, Any], value_of: Callable[[Item, str], Any]):
        self.tokens = _tokens(text)
        self.at = 0
        self.macros = macros
        self.value_of = value_of
        self.referenced: set[str] = set()

    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.at + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def word(self, *words: str) -> bool:
        kind, value = self.peek()
        if kind == "word" and value.upper() in words:
            self.at += 1
            return True
        return False

    def expect_word(self, word: str) -> None:
        if not self.word(word):
            raise errors.wiql_syntax(f"Expecting {word}. The error is caused by "
                                     f"\u00ab{self.peek()[1] or 'the end'}\u00bb.")

    def take(self, kind: str) -> str:
        found, value = self.peek()
        if found != kind:
            raise errors.wiql_syntax(f"Expecting a {kind}. The error is caused by "
                                     f"\u00ab{value or 'the end'}\u00bb.")
        self.at += 1
        return value

    def field(self) -> str:
        name = self.take("field")[1:-1].strip()
        self.referenced.add(name)
        return name

    def parse(self) -> Query:
        self.expect_word("SELECT")
        fields = [self.field()]
        while self.peek() == ("op", ","):
            self.at += 1
            fields.append(self.field())
        self.expect_word("FROM")
        source = self.take("word")
        if source.lower() != "workitems":
            raise errors.wiql_syntax(f"The sandbox answers flat queries FROM WorkItems, not "
                                     f"{source}.")
        where: Test = lambda item: True
        if self.word("WHERE"):
            where = self.condition()
        order: list[tuple[str, bool]] = []
        if self.word("ORDER"):
            self.expect_word("BY")
            while True:
                name = self.field()
                descending = self.word("DESC")
                if not descending:
                    self.word("ASC")
                order.append((name, descending))
                if self.peek() != ("op", ","):
                    break
                self.at += 1
        if self.word("ASOF"):
            self.take("text")
        if self.peek()[0] != "end":
            raise errors.wiql_syntax(f"The error is caused by \u00ab{self.peek()[1]}\u00bb.")
        return Query(fields, where, order, self.referenced)

    def condition(self) -> Test:
        parts = [self.conjunction()]
        while self.word("OR"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda item: any(p(item) for p in parts))

    def conjunction(self) -> Test:
        parts = [self.factor()]
        while self.word("AND"):
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else (lambda item: all(p(item) for p in parts))

    def factor(self) -> Test:
        if self.word("NOT"):
            inner = self.factor()
            return lambda item: not inner(item)
        if self.peek() == ("op", "("):
            self.at += 1
            inner = self.condition()
            if self.take("op") != ")":
                raise errors.wiql_syntax("Expecting ).")
            return inner
        return self.comparison()

    def comparison(self) -> Test:
        name = self.field()
        negate = self.word("NOT")
        kind, op = self.peek()
        if kind == "op" and op in ("=", "<>", "<", ">", "<=", ">="):
            self.at += 1
            value = self.value()
            test = _compare(op, value)
        elif self.word("CONTAINS"):
            words = self.word("WORDS")
            value = self.value()
            test = _contains(name, value, words)
        elif self.word("IN"):
            values = self.values()
            test = lambda have: any(_equal(have, v) for v in values)
        elif self.word("UNDER"):
            value = str(self.value()).lower()
            test = lambda have: str(have or "").lower() == value or \
                str(have or "").lower().startswith(value + "\\")
        else:
            raise errors.wiql_syntax(f"Expecting an operator. The error is caused by "
                                     f"\u00ab{op or 'the end'}\u00bb.")
        value_of = self.value_of
        if negate:
            return lambda item: not test(value_of(item, name))
        return lambda item: test(value_of(item, name))

    def values(self) -> list[Any]:
        if self.take("op") != "(":
            raise errors.wiql_syntax("Expecting (.")
        found = [self.value()]
        while self.peek() == ("op", ","):
            self.at += 1
            found.append(self.value())
        if self.take("op") != ")":
            raise errors.wiql_syntax("Expecting ).")
        return found

    def value(self) -> Any:
        kind, raw = self.peek()
        self.at += 1
        if kind == "text":
            return raw[1:-1].replace("''", "'")
        if kind == "number":
            return float(raw) if "." in raw else int(raw)
        if kind == "macro":
            name = raw[1:].lower()
            if name == "today":
                days = 0
                if self.peek() in (("op", "+"), ("op", "-")):
                    sign = 1 if self.take("op") == "+" else -1
                    days = sign * int(self.take("number"))
                return (dt.date.today() + dt.timedelta(days=days)).isoformat()
            if name in self.macros:
                return self.macros[name]
            raise errors.wiql_syntax(f"The macro {raw} is not known.")
        raise errors.wiql_syntax(f"Expecting a value. The error is caused by "
                                 f"\u00ab{raw or 'the end'}\u00bb.")


def _text(value: Any) -> str:
    if isinstance(value, dict):  # an identity
        return str(value.get("uniqueName") or value.get("displayName") or "")
    return str(value if value is not None else "")


def _equal(have: Any, want: Any) -> bool:
    if isinstance(want, (int, float)) and not isinstance(have, dict):
        try:
            return float(have) == float(want)
        except (TypeError, ValueError):
            return False
    if isinstance(have, dict):
        return str(want).lower() in (_text(have).lower(), str(have.get("displayName", "")).lower())
    return _text(have).lower() == str(want).lower()


def _compare(op: str, want: Any) -> Callable[[Any], bool]:
    def test(have: Any) -> bool:
        if op == "=":
            return _equal(have, want)
        if op == "<>":
            return not _equal(have, want)
        if have is None:
            return False
        if isinstance(want, (int, float)):
            try:
                left, right = float(have), float(want)
            except (TypeError, ValueError):
                return False
        else:  # text and dates: ISO dates order as text
            left, right = _text(have).lower(), str(want).lower()
        return {"<": left < right, ">": left > right, "<=": left <= right,
                ">=": left >= right}[op]
    return test


def _contains(name: str, want: Any, words: bool) -> Callable[[Any], bool]:
    needle = str(want).lower()
    if name == "System.Tags":  # a tag, whole
        return lambda have: needle in [t.strip().lower() for t in _text(have).split(";")]
    if words:
        return lambda have: re.search(rf"\b{re.escape(needle)}\b", _text(have).lower()) is not None
    return lambda have: needle in _text(have).lower()


def parse(text: str, macros: dict[str, Any], value_of: Callable[[Item, str], Any]) -> Query:
    if not isinstance(text, str) or not text.strip():
        raise errors.argument_null("wiql.query")
    if len(text) > 32_768:
        raise errors.wiql_syntax("The query is longer than 32768 characters.")
    return _Parser(text, macros, value_of).parse()
