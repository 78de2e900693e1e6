# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TOML for target hosts: ``tomllib`` where Python has it (3.11+), our own strict subset otherwise.

The subset covers what container runtime configs use: tables, arrays of tables, dotted and
quoted keys, basic/literal strings (single- and multi-line), integers (decimal, hex, octal,
binary, underscores), floats (incl. inf/nan), booleans, arrays, inline tables and comments.
Dates and times are rejected with a clear error rather than guessed. Every error carries the
1-based line number so that callers can report ``file:line: reason``.
"""

from __future__ import annotations

import math
import re

try:  # Python 3.11+
    import tomllib as _tomllib
except ImportError:  # pragma: no cover - exercised on 3.8-3.10 targets
    _tomllib = None


class TomlError(ValueError):
    """A TOML document that does not parse; ``line`` is 1-based (None when unknown)."""

    def __init__(self, reason, line=None):
        self.reason = reason
        self.line = line
        super().__init__(reason if line is None else "line %d: %s" % (line, reason))


_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
_DEC_INT_RE = re.compile(r"[+-]?(?:0|[1-9](?:_?[0-9])*)")
_FLOAT_RE = re.compile(r"[+-]?(?:0|[1-9](?:_?[0-9])*)(?:\.[0-9](?:_?[0-9])*)?(?:[eE][+-]?[0-9](?:_?[0-9])*)?")
_PREFIXED_INT_RE = {
    "0x": (re.compile(r"0x[0-9A-Fa-f](?:_?[0-9A-Fa-f])*"), 16),
    "0o": (re.compile(r"0o[0-7](?:_?[0-7])*"), 8),
    "0b": (re.compile(r"0b[01](?:_?[01])*"), 2),
}
_SPECIAL_FLOATS = {"inf": math.inf, "nan": math.nan}
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}")
_SIMPLE_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}
_VALUE_END = " \t\r\n,]}#"


class _Parser:
    def __init__(self, text):
        self.text = text
        self.pos = 0
        self.root = {}
        # Tables opened by a [header], and tables created implicitly by dotted keys; both can
        # no longer be opened by a header. Inline tables and static arrays are frozen.
        self.header_tables = set()
        self.dotted_tables = set()
        self.frozen = set()
        self.array_tables = set()

    # ---- low-level helpers -------------------------------------------------------------
    def error(self, reason, pos=None):
        where = self.pos if pos is None else pos
        raise TomlError(reason, self.text.count("\n", 0, where) + 1)

    def peek(self, count=1):
        return self.text[self.pos : self.pos + count]

    def skip_ws(self):
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def skip_comment(self):
        if self.peek() != "#":
            return
        end = self.text.find("\n", self.pos)
        end = len(self.text) if end < 0 else end
        for char in self.text[self.pos : end]:
            if _is_control(char) and char != "\t":
                self.error("control character %r in comment" % char)
        self.pos = end

    def expect_line_end(self):
        self.skip_ws()
        self.skip_comment()
        if self.pos >= len(self.text):
            return
        if self.text.startswith("\r\n", self.pos):
            self.pos += 2
        elif self.text[self.pos] == "\n":
            self.pos += 1
        else:
            self.error("expected end of line, found %r" % self.text[self.pos])

    def skip_blank_and_comments(self):
        """Inside arrays: whitespace, newlines and comments are all insignificant."""
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in " \t\n":
                self.pos += 1
            elif self.text.startswith("\r\n", self.pos):
                self.pos += 2
            elif char == "#":
                self.skip_comment()
            else:
                return

    # ---- document structure ------------------------------------------------------------
    def parse(self):
        current = self.root
        current_path = ()
        while self.pos < len(self.text):
            self.skip_ws()
            char = self.peek()
            if char in ("", "#", "\n") or self.text.startswith("\r\n", self.pos):
                self.expect_line_end()
                continue
            if char == "[":
                current, current_path = self.parse_header()
            else:
                self.parse_key_value(current, current_path)
            self.expect_line_end()
        return self.root

    def parse_header(self):
        is_array = self.peek(2) == "[["
        self.pos += 2 if is_array else 1
        self.skip_ws()
        path = self.parse_key()
        self.skip_ws()
        closing = "]]" if is_array else "]"
        if not self.text.startswith(closing, self.pos):
            self.error("expected %r to close the table header" % closing)
        self.pos += len(closing)
        if is_array:
            return self.open_array_table(path), path
        return self.open_table(path), path

    def descend(self, path, creating_from):
        """Walk to the table that holds path[-1], creating implicit tables on the way."""
        table = self.root
        for depth, part in enumerate(path[:-1]):
            prefix = path[: depth + 1]
            value = table.get(part)
            if value is None:
                value = table[part] = {}
            elif isinstance(value, list) and prefix in self.array_tables:
                value = value[-1]
            elif not isinstance(value, dict):
                self.error("key %s is not a table (%s)" % (_dotted(prefix), creating_from))
            if prefix in self.frozen:
                self.error("inline table %s cannot be extended" % _dotted(prefix))
            table = value
        return table

    def open_table(self, path):
        parent = self.descend(path, "table header")
        last = path[-1]
        if path in self.header_tables or path in self.dotted_tables or path in self.array_tables:
            self.error("table [%s] defined more than once" % _dotted(path))
        existing = parent.get(last)
        if existing is None:
            existing = parent[last] = {}
        elif not isinstance(existing, dict) or path in self.frozen:
            self.error("key %s already has a value" % _dotted(path))
        self.header_tables.add(path)
        return existing

    def open_array_table(self, path):
        parent = self.descend(path, "array of tables")
        last = path[-1]
        existing = parent.get(last)
        if existing is None:
            existing = parent[last] = []
            self.array_tables.add(path)
        elif path not in self.array_tables:
            self.error("key %s is not an array of tables" % _dotted(path))
        # A new element resets what was defined below the previous one.
        self.header_tables = {p for p in self.header_tables if p[: len(path)] != path or p == path}
        self.dotted_tables = {p for p in self.dotted_tables if p[: len(path)] != path}
        self.array_tables = {p for p in self.array_tables if p[: len(path)] != path or p == path}
        table = {}
        existing.append(table)
        return table

    def parse_key_value(self, table, table_path, frozen_parent=None):
        key_pos = self.pos
        key = self.parse_key()
        self.skip_ws()
        if self.peek() != "=":
            self.error("expected '=' after key %s" % _dotted(key))
        self.pos += 1
        self.skip_ws()
        value = self.parse_value()
        target = table
        for depth, part in enumerate(key[:-1]):
            full = table_path + key[: depth + 1]
            existing = target.get(part)
            if existing is None:
                existing = target[part] = {}
                self.dotted_tables.add(full)
            elif not isinstance(existing, dict) or full in self.frozen or full in self.header_tables:
                self.error("key %s already has a value" % _dotted(full), key_pos)
            else:
                self.dotted_tables.add(full)
            target = existing
        if key[-1] in target:
            self.error("key %s defined more than once" % _dotted(table_path + key), key_pos)
        target[key[-1]] = value
        if isinstance(value, dict) and getattr(value, "_inline", False):
            self.freeze(value, table_path + key)

    def freeze(self, value, path):
        self.frozen.add(path)
        for key, item in value.items():
            if isinstance(item, dict):
                self.freeze(item, path + (key,))

    # ---- keys ----------------------------------------------------------------------------
    def parse_key(self):
        parts = [self.parse_simple_key()]
        while True:
            self.skip_ws()
            if self.peek() != ".":
                return tuple(parts)
            self.pos += 1
            self.skip_ws()
            parts.append(self.parse_simple_key())

    def parse_simple_key(self):
        char = self.peek()
        if char == '"':
            if self.peek(3) == '"""':
                self.error("multi-line strings cannot be keys")
            return self.parse_basic_string()
        if char == "'":
            if self.peek(3) == "'''":
                self.error("multi-line strings cannot be keys")
            return self.parse_literal_string()
        match = _BARE_KEY_RE.match(self.text, self.pos)
        if not match:
            self.error("invalid key: expected a bare or quoted key, found %r" % (char or "end of file"))
        self.pos = match.end()
        return match.group()

    # ---- values --------------------------------------------------------------------------
    def parse_value(self):
        char = self.peek()
        if char == "":
            self.error("expected a value, found end of file")
        if char == '"':
            if self.peek(3) == '"""':
                return self.parse_multiline_basic()
            return self.parse_basic_string()
        if char == "'":
            if self.peek(3) == "'''":
                return self.parse_multiline_literal()
            return self.parse_literal_string()
        if char == "[":
            return self.parse_array()
        if char == "{":
            return self.parse_inline_table()
        for word, value in (("true", True), ("false", False)):
            if self.text.startswith(word, self.pos) and self.at_value_end(self.pos + len(word)):
                self.pos += len(word)
                return value
        return self.parse_number()

    def at_value_end(self, pos):
        return pos >= len(self.text) or self.text[pos] in _VALUE_END

    def parse_number(self):
        start = self.pos
        if _DATE_RE.match(self.text, start):
            self.error("dates and times are not supported by this parser")
        sign = self.peek() if self.peek() in ("+", "-") else ""
        for word, value in _SPECIAL_FLOATS.items():
            end = start + len(sign) + len(word)
            if self.text.startswith(word, start + len(sign)) and self.at_value_end(end):
                self.pos = end
                return -value if sign == "-" else value
        prefix = self.peek(2)
        if prefix in _PREFIXED_INT_RE:
            regex, base = _PREFIXED_INT_RE[prefix]
            match = regex.match(self.text, start)
            if match and self.at_value_end(match.end()):
                self.pos = match.end()
                return int(match.group()[2:].replace("_", ""), base)
            self.error("invalid number %r" % self.token_at(start))
        match = _FLOAT_RE.match(self.text, start)
        if not match or not self.at_value_end(match.end()):
            self.error("invalid value %r" % self.token_at(start))
        token = match.group()
        self.pos = match.end()
        if _DEC_INT_RE.fullmatch(token):
            return int(token.replace("_", ""))
        return float(token.replace("_", ""))

    def token_at(self, start):
        end = start
        while end < len(self.text) and self.text[end] not in _VALUE_END:
            end += 1
        return self.text[start:end] or self.text[start : start + 1]

    def parse_basic_string(self):
        self.pos += 1
        out = []
        while True:
            if self.pos >= len(self.text):
                self.error("unterminated string")
            char = self.text[self.pos]
            if char == '"':
                self.pos += 1
                return "".join(out)
            if char == "\n":
                self.error("newline in a single-line string")
            if char == "\\":
                out.append(self.parse_escape())
                continue
            if _is_control(char) and char != "\t":
                self.error("control character %r in string" % char)
            out.append(char)
            self.pos += 1

    def parse_escape(self):
        code = self.text[self.pos + 1 : self.pos + 2]
        if code in _SIMPLE_ESCAPES:
            self.pos += 2
            return _SIMPLE_ESCAPES[code]
        if code in ("u", "U"):
            width = 4 if code == "u" else 8
            digits = self.text[self.pos + 2 : self.pos + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                self.error("invalid \\%s escape" % code)
            value = int(digits, 16)
            if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
                self.error("escape \\%s%s is not a Unicode scalar value" % (code, digits))
            self.pos += 2 + width
            return chr(value)
        self.error("invalid escape sequence \\%s" % (code or "<end of file>"))
        return ""  # unreachable; error() raises

    def parse_literal_string(self):
        self.pos += 1
        end = self.pos
        while True:
            if end >= len(self.text):
                self.error("unterminated string")
            char = self.text[end]
            if char == "'":
                break
            if char == "\n":
                self.error("newline in a single-line string", end)
            if _is_control(char) and char != "\t":
                self.error("control character %r in string" % char, end)
            end += 1
        value = self.text[self.pos : end]
        self.pos = end + 1
        return value

    def skip_first_newline(self):
        if self.text.startswith("\r\n", self.pos):
            self.pos += 2
        elif self.peek() == "\n":
            self.pos += 1

    def parse_multiline_basic(self):
        self.pos += 3
        self.skip_first_newline()
        out = []
        while True:
            if self.pos >= len(self.text):
                self.error("unterminated multi-line string")
            if self.text.startswith('"""', self.pos):
                # Up to two quotes may sit right before the closing delimiter.
                extra = self.closing_quotes(self.pos, '"')
                out.append('"' * extra)
                self.pos += 3 + extra
                return "".join(out)
            char = self.text[self.pos]
            if char == "\\":
                if self.line_ending_backslash():
                    continue
                out.append(self.parse_escape())
                continue
            if self.text.startswith("\r\n", self.pos):
                out.append("\r\n")
                self.pos += 2
                continue
            if _is_control(char) and char not in "\t\n":
                self.error("control character %r in string" % char)
            out.append(char)
            self.pos += 1

    def line_ending_backslash(self):
        """A backslash followed by only whitespace up to the newline trims to the next text."""
        probe = self.pos + 1
        while probe < len(self.text) and self.text[probe] in " \t":
            probe += 1
        if probe < len(self.text) and self.text[probe] not in "\r\n":
            return False
        if probe >= len(self.text):
            return False
        while probe < len(self.text) and self.text[probe] in " \t\r\n":
            probe += 1
        self.pos = probe
        return True

    def closing_quotes(self, pos, quote):
        """At a triple-quote delimiter: how many of the quotes belong to the content (0-2)."""
        count = 0
        while self.text.startswith(quote, pos + count):
            count += 1
        if count > 5:
            self.error("too many quotes at the end of a multi-line string", pos)
        return count - 3

    def parse_multiline_literal(self):
        self.pos += 3
        self.skip_first_newline()
        end = self.text.find("'''", self.pos)
        if end < 0:
            self.error("unterminated multi-line string")
        end += self.closing_quotes(end, "'")
        value = self.text[self.pos : end]
        for offset, char in enumerate(value):
            if _is_control(char) and char not in "\t\n\r":
                self.error("control character %r in string" % char, self.pos + offset)
        self.pos = end + 3
        return value

    def parse_array(self):
        self.pos += 1
        items = []
        while True:
            self.skip_blank_and_comments()
            if self.peek() == "]":
                self.pos += 1
                return items
            items.append(self.parse_value())
            self.skip_blank_and_comments()
            if self.peek() == ",":
                self.pos += 1
                continue
            if self.peek() == "]":
                self.pos += 1
                return items
            self.error("expected ',' or ']' in array, found %r" % (self.peek() or "end of file"))

    def parse_inline_table(self):
        self.pos += 1
        table = _InlineTable()
        sub = _Parser.__new__(_Parser)
        sub.__dict__.update(self.__dict__)
        sub.root = table
        sub.header_tables, sub.dotted_tables = set(), set()
        sub.frozen, sub.array_tables = set(), set()
        self.skip_ws()
        if self.peek() == "}":
            self.pos += 1
            return table
        while True:
            self.skip_ws()
            sub.pos = self.pos
            sub.parse_key_value(table, ())
            self.pos = sub.pos
            self.skip_ws()
            char = self.peek()
            if char == ",":
                self.pos += 1
                continue
            if char == "}":
                self.pos += 1
                return table
            self.error("expected ',' or '}' in inline table, found %r" % (char or "end of file"))


class _InlineTable(dict):
    _inline = True


def _is_control(char):
    return char < " " or char == "\x7f"


def _dotted(path):
    return ".".join(path)


def _plain(value):
    """Turn _InlineTable instances back into plain dicts."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def parse_subset(text):
    """Parse with our own subset parser (always; tests compare it with tomllib)."""
    return _plain(_Parser(text).parse())


_TOMLLIB_POS_RE = re.compile(r"\s*\(at line (\d+), column (\d+)\)")


def loads(text):
    """Parse TOML text into dicts/lists; raise TomlError with a line number on bad input."""
    if _tomllib is None:
        return parse_subset(text)
    try:
        return _tomllib.loads(text)
    except _tomllib.TOMLDecodeError as exc:
        message = str(exc)
        line = getattr(exc, "lineno", None)
        match = _TOMLLIB_POS_RE.search(message)
        if match:
            line = line or int(match.group(1))
            message = message[: match.start()] + " (column %s)" % match.group(2)
        raise TomlError(message.strip(), line) from None
