"""The TOML subset parser used on Python < 3.11 targets, cross-checked against tomllib."""

from __future__ import annotations

import glob
import math
import os
import re
import tomllib

import pytest

from ansible_collections.mountops.fleet.plugins.module_utils import _runtime_toml
from ansible_collections.mountops.fleet.plugins.module_utils._runtime_toml import TomlError, parse_subset

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "runtime")
# Every TOML file among the fixtures: engine configs (valid, commented, broken) and the feature file.
TOML_FILES = sorted(
    glob.glob(os.path.join(FIXTURES, "configs", "*.toml"))
    + glob.glob(os.path.join(FIXTURES, "hosts", "*", "etc", "containerd", "**", "*.toml"), recursive=True)
    + glob.glob(os.path.join(FIXTURES, "hosts", "*", "etc", "crio", "**", "*.conf"), recursive=True)
    + glob.glob(os.path.join(FIXTURES, "hosts", "*", "etc", "containers", "**", "*.conf"), recursive=True)
    + glob.glob(os.path.join(FIXTURES, "hosts", "*", "usr", "share", "containers", "*.conf"))
)

INLINE_CASES = {
    "empty": "",
    "bom": "\ufeffa = 1\n",
    "crlf": "a = 1\r\n[t]\r\nb = 'x'\r\n",
    "dotted-into-header-implicit": "[a.b.c]\nx = 1\n[a]\nb.d = 2\n",
    "array-tables-reset": "[[p]]\nn = 1\n[p.q]\nz = 1\n[[p]]\nn = 2\n[p.q]\nz = 2\n",
    "quotes-before-close": "s = \"\"\"a\"\"\"\"\nt = '''b'''''\n",
    "line-ending-backslash": 's = """\\\n   one \\\n   two"""\n',
    "specials": "a = nan\nb = +inf\nc = -nan\nd = -0.0\ne = 0\n",
    "prefixed": "h = 0xdead_BEEF\no = 0o17\nb = 0b1_0\n",
    "nested-inline": "t = { a = { b = { c = [1, { d = 2 }] } } }\n",
    "empty-inline-and-array": "t = {}\na = []\n",
    "unicode": 'a = "\\u00e9\\U0001F600"\n"ключ" = \'значение\'\n',
    "comment-after-header": "[a] # c\n[[b]] # d\nx = 1 # e\n",
    # invalid documents: both parsers must refuse them, at the same line
    "dup-key": "a = 1\nb = 2\na = 3\n",
    "dup-table": "[a]\nx = 1\n[b]\n[a]\n",
    "extend-inline": "a = { b = 1 }\n[a.c]\n",
    "extend-inline-dotted": "a = { b = 1 }\na.c = 2\n",
    "array-then-table": "[[t]]\n[t]\n",
    "static-array-then-array-table": "t = []\n[[t]]\n",
    "dotted-then-header": "[x]\nb.c = 1\n[x.b]\n",
    "scalar-then-table": "a = 1\n[a.b]\n",
    "missing-value": "a =\n",
    "missing-equals": "a 1\n",
    "leading-zero": "a = 012\n",
    "double-underscore": "a = 1__2\n",
    "trailing-underscore": "a = 1_\n",
    "bad-escape": 'a = "\\q"\n',
    "surrogate-escape": 'a = "\\uD800"\n',
    "newline-in-string": 'a = "x\ny"\n',
    "unterminated-multiline": 'a = """x\n',
    "six-quotes": 'a = """x""""""\n',
    "two-values": "a = 1 2\n",
    "array-missing-comma": "a = [1 2]\n",
    "array-double-comma": "a = [1,,2]\n",
    "inline-trailing-comma": "a = { b = 1, }\n",
    "inline-newline": "a = { b = 1,\n c = 2 }\n",
    "bare-word": "a = yes\n",
    "open-header": "[a\nb = 1\n",
    "empty-key": "= 1\n",
    "control-char": "a = 'x\x01'\n",
    "multiline-key": '"""k""" = 1\n',
}

_POS_RE = re.compile(r"at line (\d+)")


def reference(text):
    """("ok", doc) or ("error", line) from tomllib."""
    try:
        return "ok", tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _POS_RE.search(str(exc))
        return "error", int(match.group(1)) if match else None


def ours(text):
    try:
        return "ok", parse_subset(text)
    except TomlError as exc:
        return "error", exc.line


def same_document(left, right):
    """Equality that treats NaN as equal to NaN and keeps the float/int distinction."""
    if isinstance(left, dict):
        return (
            isinstance(right, dict)
            and left.keys() == right.keys()
            and all(same_document(left[k], right[k]) for k in left)
        )
    if isinstance(left, list):
        return isinstance(right, list) and len(left) == len(right) and all(map(same_document, left, right))
    if isinstance(left, float) and math.isnan(left):
        return isinstance(right, float) and math.isnan(right)
    return type(left) is type(right) and left == right


def test_fixture_corpus_is_not_empty():
    assert len(TOML_FILES) >= 15


@pytest.mark.parametrize("path", TOML_FILES, ids=lambda p: os.path.relpath(p, FIXTURES))
def test_fixture_files_match_tomllib(path):
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    expected, mine = reference(text), ours(text)
    assert mine[0] == expected[0]
    if expected[0] == "ok":
        assert same_document(expected[1], mine[1])
    elif expected[1] is not None:
        assert mine[1] == expected[1], "error reported at the same line as tomllib"


@pytest.mark.parametrize("name", sorted(INLINE_CASES))
def test_inline_cases_match_tomllib(name):
    text = INLINE_CASES[name]
    expected, mine = reference(text), ours(text)
    assert mine[0] == expected[0], (expected, mine)
    if expected[0] == "ok":
        assert same_document(expected[1], mine[1])
    elif expected[1] is not None:  # tomllib says "at end of document" without a line
        assert mine[1] == expected[1]


def test_features_file_values():
    with open(os.path.join(FIXTURES, "configs", "toml-features.toml"), encoding="utf-8") as handle:
        doc = parse_subset(handle.read())
    assert doc["ints"] == [99, 42, 0, -17, 1000, 0xDEADBEEF, 0o755, 0b1101]
    assert doc["multi"] == "Roses are red\n  Violets are blue continued"
    assert doc["literal_multi"].endswith("is preserved. ''quoted'' ")
    assert doc["fruits"][0]["varieties"][1] == {"name": "granny smith"}
    assert doc["fruits"][1]["varieties"] == [{"name": "plantain"}]
    assert doc["table"]["with spaces"]["sub"] == {"key": "value"}
    assert doc["3"] == {"14159": "pi"}
    assert doc["dog"]["tater.man"] == {"type": {"name": "pug"}}


def test_dates_are_refused_with_a_clear_error():
    with pytest.raises(TomlError, match="dates and times are not supported") as info:
        parse_subset("a = 1\nd = 1979-05-27T07:32:00Z\n")
    assert info.value.line == 2


@pytest.mark.parametrize(
    "text, line, reason",
    [
        ('[engine]\nruntime = "crun\n', 2, "newline in a single-line string"),
        ("a = 1\na = 2\n", 2, "key a defined more than once"),
        ("[crio.runtime]\n[crio.runtime]\n", 2, "table [crio.runtime] defined more than once"),
        ("x = [1,\n\n  2,\n  ?]\n", 4, "invalid value '?'"),
    ],
)
def test_error_messages_name_the_line_and_the_problem(text, line, reason):
    with pytest.raises(TomlError) as info:
        parse_subset(text)
    assert info.value.line == line
    assert info.value.reason == reason
    assert str(info.value) == "line %d: %s" % (line, reason)


def test_loads_uses_tomllib_and_converts_its_errors():
    assert _runtime_toml._tomllib is tomllib
    with pytest.raises(TomlError) as info:
        _runtime_toml.loads("a = 1\nb = \n")
    assert info.value.line == 2
    assert "line" not in info.value.reason and "(column" in info.value.reason


def test_loads_falls_back_to_the_subset(monkeypatch):
    monkeypatch.setattr(_runtime_toml, "_tomllib", None)
    assert _runtime_toml.loads("a = { b = [1] }\n") == {"a": {"b": [1]}}
    with pytest.raises(TomlError, match="line 1"):
        _runtime_toml.loads("a = \n")
