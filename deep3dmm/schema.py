"""Typed option schemas: one frozen dataclass per concept, its fields the options.

Every option is declared once, with :func:`option` (default, help, choices, lower bound),
in a frozen dataclass (:class:`~deep3dmm.nn.ModelConfig`,
:class:`~deep3dmm.mesh.HierarchyConfig`, the sections of
:class:`~deep3dmm.train.RunConfig`). The helpers here read that declaration to

- check a value when the dataclass is built (:func:`check_fields`),
- read a section from a dict such as a TOML table (:func:`from_dict`, strict types),
- generate command-line flags and read them back (:func:`add_arguments`,
  :func:`values_from_args`),

so a new field appears in the library, the config files and the CLI at once. This module
imports nothing heavy: the CLI builds its parser from it without importing torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import numbers
import os
from collections.abc import Sequence
from dataclasses import MISSING, field, fields
from typing import Any

from deep3dmm.errors import ConfigError

__all__ = [
    "add_arguments",
    "check_fields",
    "flag_of",
    "from_dict",
    "option",
    "replace",
    "to_dict",
    "values_from_args",
]


def option(
    default: Any,
    help: str,
    *,
    choices: Sequence[str] | None = None,
    minimum: float | None = None,
    flag: str | None = None,
    metavar: str | None = None,
    takes: str = "integers",
    words: Sequence[str] = (),
    cli: bool = True,
    **extra: Any,
) -> Any:
    """A dataclass field declaring one option.

    Args:
        default: the default value (immutable: tuples, not lists).
        help: one line for ``--help`` and the docs.
        choices: the allowed values of a string option.
        minimum: the smallest allowed number (each entry of a tuple option).
        flag: the command-line spelling (default ``--name-with-dashes``).
        metavar: the placeholder shown by ``--help``.
        takes: what a list flag takes, in words (its error message).
        words: single words a list flag also takes (``--reference-vertices random``).
        cli: whether the option gets a command-line flag.
        **extra: more metadata for the schema's own checks (``kinds`` of a model option).
    """
    meta = dict(help=help, choices=tuple(choices) if choices else None, minimum=minimum,
                flag=flag, metavar=metavar, takes=takes, words=tuple(words), cli=cli,
                **extra)  # fmt: skip
    return field(default=default, metadata=meta)


def _kind(annotation: Any) -> tuple[str, ...]:
    """The alternatives of a (string) annotation: ``"int | tuple[int, ...]"`` -> (int, tuple)."""
    return tuple(part.strip().split("[")[0] for part in str(annotation).split("|"))


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_fields(instance: Any) -> None:
    """Normalise (lists -> tuples) and check every field of ``instance`` against its schema.

    Raises:
        ConfigError: a value outside its choices or below its minimum; the message starts
            with the option's name (``"latent must be >= 1, got 0"``).
    """
    for f in fields(instance):
        value = getattr(instance, f.name)
        if isinstance(value, list):
            value = tuple(value)
            object.__setattr__(instance, f.name, value)
        choices, minimum = f.metadata.get("choices"), f.metadata.get("minimum")
        if choices and value not in choices:
            raise ConfigError(
                f"{f.name} must be one of {', '.join(map(repr, choices))}, got {value!r}"
            )
        if minimum is not None and value is not None and not isinstance(value, str):
            values = value if isinstance(value, tuple) else (value,)
            if any(v < minimum for v in values):
                raise ConfigError(f"{f.name} must be >= {minimum}, got {value!r}")


def _check_type(key: str, value: Any, annotation: Any) -> Any:
    """One value against the field annotation (a string: annotations are postponed)."""
    kinds = _kind(annotation)
    if value is None and "None" in kinds:
        return None
    for kind in kinds:
        if kind == "tuple" and isinstance(value, (list, tuple)):
            if all(_is_int(v) for v in value):
                return tuple(int(v) for v in value)
        elif kind == "bool" and isinstance(value, bool):
            return value
        elif kind == "int" and _is_int(value):
            return int(value)
        elif kind == "float" and isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
        elif kind == "str" and isinstance(value, str):
            return value
    names = {"tuple": "a list of integers", "bool": "true or false", "int": "an integer",
             "float": "a number", "str": "a string", "None": "absent"}  # fmt: skip
    expected = " or ".join(names.get(k, k) for k in kinds)
    raise ConfigError(f"{key} must be {expected}, got {value!r}")


def from_dict(
    kind: type,
    values: dict[str, Any],
    *,
    section: str,
    base: Any = None,
    path: str | os.PathLike | None = None,
    noun: str = "option",
    qualify: bool = True,
) -> Any:
    """Build ``kind`` from ``values`` (a TOML table, keyword options), strictly typed.

    Fields absent from ``values`` keep their value in ``base`` (default: the dataclass
    defaults). Errors name the option, qualified by the section unless ``qualify`` is false
    (``train.epochs must be >= 1``).

    Raises:
        ConfigError: not a table, an unknown option, a mistyped or invalid value.
    """
    if not isinstance(values, dict):
        raise ConfigError(f"[{section}] must be a table, got {type(values).__name__}", path=path)
    known = {f.name: f for f in fields(kind)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown {noun}(s) {', '.join(unknown)} in [{section}]; "
            f"known options: {', '.join(known)}",
            path=path,
        )
    try:
        checked = {key: _check_type(key, value, known[key].type) for key, value in values.items()}
        return dataclasses.replace(kind() if base is None else base, **checked)
    except ConfigError as exc:
        message = f"{section}.{exc.message}" if qualify else exc.message
        raise ConfigError(message, path=path, fix=exc.fix) from None


def replace(instance: Any, section: str, **changes: Any) -> Any:
    """A copy of ``instance`` with ``changes`` checked like :func:`from_dict`."""
    return from_dict(type(instance), changes, section=section, base=instance)


def to_dict(instance: Any) -> dict[str, Any]:
    """The fields as plain TOML/JSON values (``None`` left out, tuples as lists)."""
    return {
        f.name: list(v) if isinstance(v, tuple) else v
        for f in fields(instance)
        if (v := getattr(instance, f.name)) is not None
    }


# ---------------------------------------------------------------------------------- CLI
def _flag(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def flag_of(kind: type, name: str) -> str:
    """The command-line spelling of option ``name`` of ``kind`` (``--batch-size``)."""
    return _flag(kind.__dataclass_fields__[name])


def add_arguments(
    parser: argparse.ArgumentParser,
    kind: type,
    section: str,
    *,
    skip: Sequence[str] = (),
    defaults: bool = False,
) -> None:
    """Add one flag per field of ``kind`` (``--name-with-dashes``, from the schema).

    A flag already taken in ``parser`` is prefixed with the section (``--hierarchy-seed``).
    Values stay ``None`` when the flag is not given (``defaults=False``), so they
    override a configuration only where given; :func:`values_from_args` reads them back.
    """
    taken = set(parser._option_string_actions)
    for f in fields(kind):
        meta = f.metadata
        if f.name in skip or not meta.get("cli", True):
            continue
        flag = _flag(f)
        if flag in taken:
            flag = f"--{section}-{f.name.replace('_', '-')}"
        default = None if f.default is MISSING else f.default
        shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = meta.get("help", "")
        if default not in (None, ""):
            help_text = f"{help_text} (default {shown})"
        kwargs: dict[str, Any] = dict(
            dest=f"{section}.{f.name}",
            help=help_text.replace("%", "%%"),
            default=default if defaults else None,
        )
        kinds = _kind(f.type)
        if kinds[0] == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif "tuple" in kinds:
            kwargs.update(nargs="+", metavar=meta.get("metavar") or "N")
        else:
            kwargs["type"] = {"int": int, "float": float}.get(kinds[0], str)
            if meta.get("choices"):
                kwargs["choices"] = meta["choices"]
            else:
                kwargs["metavar"] = meta.get("metavar") or f.name.upper()
        parser.add_argument(flag, **kwargs)


def _parse_cli(f: dataclasses.Field, value: Any) -> Any:
    """A ``nargs="+"`` value: integers (``8 8`` or ``8,8``), one int, or one word."""
    if not isinstance(value, list):
        return value
    items = [part for text in value for part in str(text).split(",") if part]
    kinds = _kind(f.type)
    try:
        ints = tuple(int(v) for v in items)
    except ValueError:
        if len(items) == 1 and items[0] in f.metadata.get("words", ()):
            return items[0]
        raise ConfigError(
            f"{_flag(f)} takes {f.metadata.get('takes', 'integers')}, "
            f"got {' '.join(map(str, value))}"
        ) from None
    if "int" in kinds and len(ints) == 1:
        return ints[0]
    return ints


def values_from_args(args: argparse.Namespace, kind: type, section: str) -> dict[str, Any]:
    """The options of ``kind`` given on the command line (flags left out are not returned)."""
    values = {}
    for f in fields(kind):
        value = getattr(args, f"{section}.{f.name}", None)
        if value is not None:
            values[f.name] = _parse_cli(f, value)
    return values
