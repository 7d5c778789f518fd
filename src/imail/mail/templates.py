"""The step template language, pure (no I/O): the API validates with it on save, the preview and the sending
engine render with it.

    {{first_name}}            a lead field or one of its custom_variables
    {{first_name|there}}      with a fallback, used when the value is missing or empty
    {Hi|Hello|Hey}            spintax: one option per rendering (options may hold variables and spintax)
    \\{  \\}  \\|                a literal brace or pipe

Braces must balance. A `{…}` group with no top-level `|` is kept as literal text (so CSS such as
`p{margin:0}` in an HTML body survives). Positions in errors are 1-based character offsets into the
template, with the line and column.
"""

from __future__ import annotations

import html
import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

BUILTIN_VARIABLES: tuple[str, ...] = ("email", "first_name", "last_name", "company", "title")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
ESCAPABLE = "{}|"
# Groups and spintax nest at most this deep. The parser and the renderer recurse once per level, so the bound
# is what keeps a body nested hundreds deep a 400 instead of a RecursionError; real templates nest two or
# three.
MAX_NESTING = 20


class TemplateError(ValueError):
    """A template that cannot be parsed or uses a variable it cannot know."""

    def __init__(self, problem: str, position: int, line: int, column: int):
        super().__init__(f"{problem} at position {position} (line {line}, column {column})")
        self.problem = problem
        self.position = position
        self.line = line
        self.column = column


class MissingVariable(LookupError):
    """Rendering needed a value the lead does not have, and the template gave no fallback."""

    def __init__(self, name: str, position: int):
        super().__init__(f"no value for {{{{{name}}}}} (position {position}) and no fallback")
        self.name = name
        self.position = position


@dataclass(frozen=True, slots=True)
class Var:
    name: str
    fallback: str | None
    position: int  # 1-based offset of the opening `{{`


@dataclass(frozen=True, slots=True)
class Spin:
    options: tuple[tuple[Node, ...], ...]
    position: int


@dataclass(frozen=True, slots=True)
class Group:
    """A balanced `{…}` without a top-level `|`: literal braces around its content."""

    content: tuple[Node, ...]


Node = str | Var | Spin | Group


@dataclass(frozen=True)
class Template:
    source: str
    nodes: tuple[Node, ...] = field(default=())

    def variables(self) -> list[Var]:
        """Every variable reference, in order, including those inside spintax options."""
        return list(_walk_vars(self.nodes))


def _walk_vars(nodes: tuple[Node, ...]) -> Iterator[Var]:
    for node in nodes:
        if isinstance(node, Var):
            yield node
        elif isinstance(node, Spin):
            for option in node.options:
                yield from _walk_vars(option)
        elif isinstance(node, Group):
            yield from _walk_vars(node.content)


def _locate(source: str, index: int) -> tuple[int, int, int]:
    """(position, line, column), all 1-based, for a 0-based index."""
    line = source.count("\n", 0, index) + 1
    column = index - (source.rfind("\n", 0, index) + 1) + 1
    return index + 1, line, column


class _Parser:
    def __init__(self, source: str):
        self.source = source
        self.i = 0
        self.depth = 0

    def error(self, problem: str, index: int) -> TemplateError:
        return TemplateError(problem, *_locate(self.source, index))

    def parse(self) -> tuple[Node, ...]:
        nodes, closed_by = self.sequence(top=True)
        assert closed_by is None
        return nodes

    def sequence(self, top: bool, opened_at: int = 0) -> tuple[tuple[Node, ...], str | None]:
        """Nodes up to the end (top level) or to the `|` / `}` that ends a spintax option."""
        src = self.source
        nodes: list[Node] = []
        text: list[str] = []

        def flush() -> None:
            if text:
                nodes.append("".join(text))
                text.clear()

        while self.i < len(src):
            ch = src[self.i]
            if ch == "\\" and self.i + 1 < len(src) and src[self.i + 1] in ESCAPABLE:
                text.append(src[self.i + 1])
                self.i += 2
            elif src.startswith("{{", self.i):
                flush()
                nodes.append(self.variable())
            elif ch == "{":
                flush()
                nodes.append(self.group())
            elif ch == "}":
                if top:
                    raise self.error("unbalanced brace: `}` closes nothing", self.i)
                flush()
                self.i += 1
                return tuple(nodes), "}"
            elif ch == "|" and not top:
                flush()
                self.i += 1
                return tuple(nodes), "|"
            else:
                # Plain text up to the next character that means something.
                j = self.i + 1
                while j < len(src) and src[j] not in "\\{}|":
                    j += 1
                text.append(src[self.i : j])
                self.i = j
        if not top:
            raise self.error("unbalanced brace: `{` is never closed", opened_at)
        flush()
        return tuple(nodes), None

    def variable(self) -> Var:
        start = self.i
        end = self.source.find("}}", start + 2)
        if end < 0:
            raise self.error("unbalanced braces: `{{` is never closed by `}}`", start)
        inner = self.source[start + 2 : end]
        if "{" in inner:
            raise self.error("unbalanced braces: `{` inside a `{{…}}` variable", start + 2 + inner.index("{"))
        name, bar, fallback = inner.partition("|")
        name = name.strip()
        if not NAME.match(name):
            shown = name or "(empty)"
            raise self.error(
                f"invalid variable name `{shown}`: use letters, digits and _ (like {{{{first_name}}}})", start
            )
        self.i = end + 2
        return Var(name, fallback if bar else None, start + 1)

    def group(self) -> Node:
        start = self.i
        if self.depth >= MAX_NESTING:
            raise self.error(f"braces and spintax nest more than {MAX_NESTING} levels deep", start)
        self.depth += 1
        self.i += 1
        options: list[tuple[Node, ...]] = []
        while True:
            nodes, closed_by = self.sequence(top=False, opened_at=start)
            options.append(nodes)
            if closed_by == "}":
                break
        self.depth -= 1
        if len(options) == 1:
            return Group(options[0])
        return Spin(tuple(options), start + 1)


@lru_cache(maxsize=4096)
def parse(source: str) -> Template:
    """Parse a template; raises TemplateError naming the position of the first problem. Templates are
    immutable and a campaign's few step texts are rendered for every lead, so each text is parsed once per
    process."""
    return Template(source, _Parser(source).parse())


def check(source: str, known: set[str] | frozenset[str]) -> Template:
    """Parse, then refuse any variable outside `known` that has no fallback."""
    template = parse(source)
    for var in template.variables():
        if var.fallback is None and var.name not in known:
            raise TemplateError(
                f"unknown variable {{{{{var.name}}}}}: it is not a lead field "
                f"({', '.join(BUILTIN_VARIABLES)}) "
                "nor one of the campaign's custom_variables; declare it in custom_variables or give a "
                "fallback "
                f"like {{{{{var.name}|…}}}}",
                *_locate(source, var.position - 1),
            )
    return template


def render(
    template: Template | str,
    values: Mapping[str, Any],
    rng: random.Random | None = None,
    *,
    escape_html: bool = False,
    missing: list[str] | None = None,
) -> str:
    """Render with a lead's values. Spintax picks with `rng` (seed it for a stable result).

    A variable whose value is missing or empty uses its fallback; without one it raises MissingVariable,
    unless `missing` is given, in which case its name is appended there and it renders as "".
    With `escape_html`, values (not the template's own text or fallbacks) are HTML-escaped.
    """
    if isinstance(template, str):
        template = parse(template)
    rng = rng or random.Random()
    out: list[str] = []
    _render(template.nodes, values, rng, escape_html, missing, out)
    return "".join(out)


def _render(
    nodes: tuple[Node, ...],
    values: Mapping[str, Any],
    rng: random.Random,
    escape_html: bool,
    missing: list[str] | None,
    out: list[str],
) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, Var):
            value = values.get(node.name)
            text = "" if value is None else value if isinstance(value, str) else _scalar(value)
            if text.strip():
                out.append(html.escape(text) if escape_html else text)
            elif node.fallback is not None:
                out.append(node.fallback)
            elif missing is not None:
                if node.name not in missing:
                    missing.append(node.name)
            else:
                raise MissingVariable(node.name, node.position)
        elif isinstance(node, Spin):
            _render(node.options[rng.randrange(len(node.options))], values, rng, escape_html, missing, out)
        else:
            out.append("{")
            _render(node.content, values, rng, escape_html, missing, out)
            out.append("}")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def lead_values(lead: Any) -> dict[str, Any]:
    """The variables a lead offers: its custom_variables, then the built-in fields (which win)."""
    values: dict[str, Any] = dict(getattr(lead, "custom_variables", None) or {})
    for name in BUILTIN_VARIABLES:
        values[name] = getattr(lead, name, None)
    return values


def stable_seed(*parts: object) -> int:
    """A spintax seed that is the same for the same lead, step and variant in every process."""
    import hashlib

    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big")
