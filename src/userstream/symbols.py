"""Load the exchangeInfo symbol table: the packaged default or `serve --symbols FILE`.

The file format and its checks are `protocol.exchange_info`'s; this module reads the bytes.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from userstream.exceptions import ConfigurationError
from userstream.protocol.exchange_info import (
    SymbolFile,
    SymbolFileError,
    SymbolTable,
    decode_symbol_file,
    with_margin_assets,
)

__all__ = ["PACKAGED", "load_symbol_table"]

PACKAGED = "userstream/data/symbols.json"


@cache
def _packaged() -> SymbolFile:
    raw = resources.files("userstream").joinpath("data/symbols.json").read_bytes()
    return decode_symbol_file(raw, PACKAGED)


def load_symbol_table(path: str | None = None) -> SymbolTable:
    """The symbols and assets exchangeInfo lists.

    Args:
        path: A symbol file to use instead of the packaged default. When it has no
            `assets`, the packaged assets are listed, plus one for each `marginAsset` they lack.

    Raises:
        ConfigurationError: The file cannot be read or is not a valid symbol file; the
            message names the file and the offending symbol or field.
    """
    packaged = _packaged()
    if path is None:
        file = packaged
    else:
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as exc:
            raise ConfigurationError(f"{path}: cannot read symbols file: {exc}") from exc
        try:
            file = decode_symbol_file(raw, path)
        except SymbolFileError as exc:
            raise ConfigurationError(str(exc)) from exc
    assets = file.assets if file.assets is not None else packaged.assets or []
    return with_margin_assets(assets, file.symbols)
