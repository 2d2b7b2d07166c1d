"""What the ``ckptkit`` commands print: one printable line per value, or JSON."""

from __future__ import annotations

import json
import re

import typer

from ckptkit.ledger import escape_field

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029\ud800-\udfff]")


def printable(value: object) -> str:
    r"""One printable line: breaks, controls, undecodable bytes as ``\n``, ``\x1b``."""
    return _UNPRINTABLE.sub(lambda match: escape_field(match.group()), str(value))


def echo_json(data: object) -> None:
    """Print JSON data on stdout, indented."""
    typer.echo(json.dumps(data, indent=2))
