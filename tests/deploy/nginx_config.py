"""A small reader of nginx configuration files: directives and their blocks, as data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

_TOKEN = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|#[^\n]*|[{};]|[^\s{};'"#]+""")


@dataclass(frozen=True)
class Directive:
    """One directive: its name, its arguments (quotes removed) and its block, if any."""

    name: str
    args: tuple[str, ...]
    block: tuple[Directive, ...] | None = field(default=None)

    def children(self, name: str) -> list[Directive]:
        """The directives called ``name`` directly inside this one's block."""
        return [child for child in self.block or () if child.name == name]

    def child(self, name: str) -> Directive:
        """The one directive called ``name`` directly inside this one's block."""
        found = self.children(name)
        assert len(found) == 1, f"{self.name} {' '.join(self.args)}: {len(found)} x {name}"
        return found[0]

    def walk(self) -> Iterator[Directive]:
        """This directive and every directive nested in it, depth first."""
        yield self
        for child in self.block or ():
            yield from child.walk()


def parse_nginx(text: str) -> Directive:
    """The whole file as the block of a root directive named ``main``."""
    tokens = [token for token in _TOKEN.findall(text) if not token.startswith("#")]
    block, end = _parse_block(tokens, 0)
    assert end == len(tokens), f"unbalanced braces near token {end}: {tokens[end : end + 5]}"
    return Directive("main", (), block)


def _parse_block(tokens: list[str], start: int) -> tuple[tuple[Directive, ...], int]:
    directives: list[Directive] = []
    words: list[str] = []
    position = start
    while position < len(tokens):
        token = tokens[position]
        position += 1
        if token == ";":
            assert words, f"empty directive at token {position}"
            directives.append(Directive(words[0], tuple(words[1:])))
            words = []
        elif token == "{":
            assert words, f"block without a name at token {position}"
            inner, position = _parse_block(tokens, position)
            directives.append(Directive(words[0], tuple(words[1:]), inner))
            words = []
        elif token == "}":
            assert not words, f"directive {words} not ended with ';'"
            return tuple(directives), position
        else:
            words.append(_unquote(token))
    assert not words, f"directive {words} not ended with ';'"
    return tuple(directives), position


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    return token


def size_in_bytes(value: str) -> int:
    """An nginx size (``8m``, ``16k``, ``1024``) in bytes."""
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    assert match, f"not an nginx size: {value!r}"
    unit = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
    return int(match.group(1)) * unit


def time_in_seconds(value: str) -> float:
    """An nginx time (``35s``, ``500ms``, ``1m``, bare seconds) in seconds."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h)?", value)
    assert match, f"not an nginx time: {value!r}"
    unit = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2)]
    return int(match.group(1)) * unit
