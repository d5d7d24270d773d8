"""Typed validation of a YAML document against frozen dataclasses; errors name the dotted key.

The schema *is* the dataclasses: a field's annotation is its type, a field
without a default is required, and ``metadata`` carries range checks
(``min``/``max``) and formats (``port``, ``domain``, ``host``, ...). Unknown
keys are refused, naming the keys that are known. Nothing here knows which
dataclasses exist: :mod:`infra.environment` declares them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

from infra.config_error import StackConfigError

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_HOSTNAME = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
_CLOUD_FORMATS: dict[str, tuple[re.Pattern[str], str]] = {
    "digest": (re.compile(r"^sha256:[0-9a-f]{64}$"), "an image digest (sha256:<64 hex>)"),
    "worker": (re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"), "a Worker/D1 name (a-z 0-9 -, <= 63)"),
    "route": (re.compile(rf"^(?:\*\.?)?{_HOSTNAME}/[A-Za-z0-9_./*-]*$"),
              "a route pattern like example.com/api/*"),
    "cron": (re.compile(r"^\S+( \S+){4}$"), "a 5-field cron expression"),
    "url": (re.compile(rf"^(?:https?|wss?)://(?:{_HOSTNAME}|localhost|[0-9.]+)(?::[0-9]{{1,5}})?(?:/\S*)?$"),
            "an http(s):// or ws(s):// URL on a valid host"),
    "issuer": (re.compile(r"^\S{1,512}$"), "an issuer (1-512 characters, no whitespace)"),
    "sender": (re.compile(r"^(?:[^<>\r\n]{0,100} <[^\s@<>]+@[^\s@<>]+>|[^\s@<>]+@[^\s@<>]+)$"),
               "a From address: name@host or Display Name <name@host>"),
    "smtp_host": (re.compile(rf"^(?:{_HOSTNAME}|[0-9]{{1,3}}(?:\.[0-9]{{1,3}}){{3}})$"),
                  "a host name (smtp.example.com) or an IPv4 address"),
}


def _check_format(fmt: str, value: Any, where: str) -> None:
    if fmt == "port" and not 1 <= value <= 65535:
        raise StackConfigError(f"{where}: port {value} is out of range 1..65535")
    if fmt == "domain" and value and not _DOMAIN.match(value):
        raise StackConfigError(f"{where}: {value!r} is not a valid domain name")
    if fmt == "bucket" and not _BUCKET.match(value):
        raise StackConfigError(f"{where}: {value!r} is not a valid S3 bucket name (3-63 of a-z 0-9 . -)")
    if fmt in _CLOUD_FORMATS and value and not _CLOUD_FORMATS[fmt][0].match(value):
        raise StackConfigError(f"{where}: {value!r} is not {_CLOUD_FORMATS[fmt][1]}")
    if fmt == "host":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise StackConfigError(f"{where}: {value!r} is not an IP address") from None


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Check ``value`` against annotation ``tp``; return it in the dataclass's shape (tuples, dataclasses)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, where)
    if origin is Literal:
        if value not in typing.get_args(tp):
            choices = ", ".join(repr(c) for c in typing.get_args(tp))
            raise StackConfigError(f"{where}: {value!r} is not one of {choices}")
        return value
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise StackConfigError(f"{where}: expected a list, got {type(value).__name__}")
        inner = typing.get_args(tp)[0]
        return tuple(_coerce(inner, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise StackConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        _, inner = typing.get_args(tp)
        return {str(k): _coerce(inner, v, f"{where}.{k}") for k, v in value.items()}
    # bool is an int in Python: refuse it where a number is expected
    if tp is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise StackConfigError(f"{where}: expected an integer, got {type(value).__name__} {value!r}")
    if tp in (str, bool, float) and not isinstance(value, tp):
        raise StackConfigError(f"{where}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    return value


def build(cls: Any, data: Any, where: str) -> Any:
    """``data`` (a parsed YAML mapping) as an instance of dataclass ``cls``; ``where`` prefixes every key."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise StackConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise StackConfigError(f"{where}.{key}: unknown key (known: {known})".lstrip("."))
    values: dict[str, Any] = {}
    for name, f in fields.items():
        key = f"{where}.{name}".lstrip(".")
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise StackConfigError(f"{key}: required key is missing")
            continue
        value = _coerce(hints[name], data[name], key)
        if value is None:  # an optional key written as `null`: same as absent
            values[name] = value
            continue
        if "min" in f.metadata and value < f.metadata["min"]:
            raise StackConfigError(f"{key}: {value} is below the minimum {f.metadata['min']}")
        if "max" in f.metadata and value > f.metadata["max"]:
            raise StackConfigError(f"{key}: {value} is above the maximum {f.metadata['max']}")
        if "format" in f.metadata:
            _check_format(f.metadata["format"], value, key)
        values[name] = value
    return cls(**values)
