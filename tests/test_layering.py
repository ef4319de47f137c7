"""The layering of DESIGN.md, checked on the source's import statements (parsed with `ast`,
nothing imported): `protocol ← bus/market/venue ← server/client ← cli`.

- `protocol/` is sans-I/O: the standard library, msgspec and the one error tree only.
- No module imports a layer above its own; the public façade (`userstream/__init__.py`)
  sits with the CLI, so nothing below the CLI imports it.
- The client does not import the server or the backends (a trader installs only the client).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "userstream"

# Each part of the package (a subpackage, or a module at the top) and its layer.
LAYERS: dict[str, int] = {
    "exceptions": 0,
    "protocol": 0,
    "clock": 0,
    "timerfd": 0,
    "storage": 1,
    "symbols": 1,
    "accounts": 1,
    "events": 1,
    "event_summary": 1,
    "bus": 1,
    "market": 1,
    "venue": 1,
    "server": 2,
    "client": 2,
    "simulator": 2,
    "cli": 3,
    "__init__": 3,
}
PROTOCOL_MAY_IMPORT = {"msgspec", "userstream.protocol", "userstream.exceptions"}


@dataclass(frozen=True)
class Import:
    source: Path
    line: int
    target: str  # the absolute module name


def part_of(path: Path) -> str:
    relative = path.relative_to(SRC)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def package_of(path: Path) -> list[str]:
    parts = ["userstream", *path.relative_to(SRC).with_suffix("").parts]
    return parts[:-1]  # the module's package (for `__init__`, the package itself)


def imports_of(path: Path, text: str | None = None) -> list[Import]:
    """Every import in the module at `path` (its `text`, else the file's), as absolute names."""
    found: list[Import] = []
    source = path.read_text() if text is None else text
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            found += [Import(path, node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                assert node.module is not None
                base = node.module
            else:
                package = package_of(path)
                base = ".".join(package[: len(package) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            found.append(Import(path, node.lineno, base))
    return found


def userstream_part(target: str) -> str | None:
    """The part of the package `target` names; "__init__" for the façade itself."""
    pieces = target.split(".")
    if pieces[0] != "userstream":
        return None
    return pieces[1] if len(pieces) > 1 else "__init__"


def all_imports() -> list[Import]:
    return [imp for path in sorted(SRC.rglob("*.py")) for imp in imports_of(path)]


def test_every_part_has_a_layer() -> None:
    parts = {part_of(path) for path in SRC.rglob("*.py")}
    assert parts <= set(LAYERS), sorted(parts - set(LAYERS))


def test_protocol_imports_only_the_standard_library_and_msgspec() -> None:
    offences = []
    for path in sorted((SRC / "protocol").rglob("*.py")):
        for imp in imports_of(path):
            top = imp.target.split(".")[0]
            allowed = top in sys.stdlib_module_names or any(
                imp.target == name or imp.target.startswith(name + ".")
                for name in PROTOCOL_MAY_IMPORT
            )
            if not allowed:
                offences.append(f"{imp.source.relative_to(SRC)}:{imp.line} {imp.target}")
    assert not offences


def test_nothing_imports_upward() -> None:
    offences = []
    for imp in all_imports():
        source, target = part_of(imp.source), userstream_part(imp.target)
        if target is not None and LAYERS[target] > LAYERS[source]:
            offences.append(f"{imp.source.relative_to(SRC)}:{imp.line} {imp.target}")
    assert not offences


@pytest.mark.parametrize("forbidden", ["server", "bus", "cli", "simulator"])
def test_the_client_stands_alone(forbidden: str) -> None:
    offences = [
        f"{imp.source.relative_to(SRC)}:{imp.line} {imp.target}"
        for path in sorted((SRC / "client").rglob("*.py"))
        for imp in imports_of(path)
        if userstream_part(imp.target) == forbidden
    ]
    assert not offences


def test_the_checker_resolves_relative_imports() -> None:
    text = "from ..server import app\nfrom . import codec\nimport userstream.cli\n"
    found = [imp.target for imp in imports_of(SRC / "protocol" / "x.py", text)]
    assert found == ["userstream.server", "userstream.protocol", "userstream.cli"]
