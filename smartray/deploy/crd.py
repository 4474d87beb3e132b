"""Checks custom objects against their CustomResourceDefinitions as the API server does.

`CRDSet.load(folder).validate(rayjob)` runs what a CREATE runs on the server, so a manifest
the cluster would refuse fails in the test suite instead of at deploy time:

1. unknown fields are reported and pruned (as with `kubectl apply --validate=strict`),
   nulls the schema does not allow are dropped, and `default:`s are filled in;
2. `status` is dropped when the CRD has a status subresource (a create cannot set it);
3. the OpenAPI v3 schema, ObjectMeta, and `x-kubernetes-list-type` set/map rules are
   checked;
4. the CEL rules in `x-kubernetes-validations` are evaluated with `celpy`. Transition
   rules (those that read `oldSelf`) are skipped, as on a create. Like the server, a rule
   is not evaluated on a value with a type, enum, required or size error; unlike the
   server (which then skips every rule), only the rules on such values are skipped.

Errors read `path: message`, with paths like
`spec.rayClusterSpec.workerGroupSpecs[0].rayStartParams.num-cpus` (map keys that are not
plain words are shown in brackets: `metadata.labels[app.kubernetes.io/name]`).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from smartray.deploy import cel, names
from smartray.errors import ConfigError

__all__ = ["CRDSet", "validate_against"]

_Schema = Mapping[str, Any]

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_EMBEDDED = "x-kubernetes-embedded-resource"
_TYPE_META = frozenset({"apiVersion", "kind", "metadata"})
_OBJECT_META = frozenset(
    {
        "name", "generateName", "namespace", "labels", "annotations", "ownerReferences",
        "finalizers", "uid", "resourceVersion", "generation", "creationTimestamp",
        "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink",
    }
)  # fmt: skip
_META_STRINGS = ("name", "generateName", "namespace", "uid", "resourceVersion", "selfLink")
_META_INTS = ("generation", "deletionGracePeriodSeconds")
_ANNOTATIONS_MAX_BYTES = 256 * 1024
_PLAIN_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
_INT_FORMATS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str, "integer": int, "number": (int, float), "boolean": bool,
    "array": list, "object": dict,
}  # fmt: skip
_RULES_SKIPPED = "validation rules not checked: correct the errors above first"


class CRDSet:
    """The served versions of a folder of CRDs, each with its OpenAPI v3 schema."""

    def __init__(self, versions: Mapping[tuple[str, str], _Version]) -> None:
        """Wraps `(apiVersion, kind) -> version`; use `CRDSet.load` to read CRD files."""
        self._versions = dict(versions)

    @classmethod
    def load(cls, folder: str | Path) -> CRDSet:
        """Reads every CustomResourceDefinition in the `*.yaml` files of `folder`.

        Raises:
            FileNotFoundError: `folder` does not exist.
            ConfigError: a CRD has no group, kind or schema for a served version.
        """
        root = Path(folder)
        if not root.is_dir():
            raise FileNotFoundError(f"CRD folder {str(root)!r} does not exist")
        versions: dict[tuple[str, str], _Version] = {}
        for file in sorted(root.glob("*.yaml")):
            with file.open("rb") as stream:
                docs = list(yaml.load_all(stream, Loader=_LOADER))
            for doc in docs:
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    versions.update(_served_versions(doc, file))
        for version in versions.values():  # compile CEL now, not in the first validate
            for text in cel.expressions(version.schema):
                cel.compile_rule(text)
        return cls(versions)

    def schema_for(self, api_version: str, kind: str) -> dict[str, Any] | None:
        """Returns the openAPIV3Schema of a served `api_version` (`group/version`) of `kind`."""
        version = self._versions.get((api_version, kind))
        return None if version is None else version.schema

    def validate(self, obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Checks `obj` as the API server checks a CREATE of it; never raises for bad input.

        Args:
            obj: A custom object as loaded from YAML; it is not modified.

        Returns:
            A copy of the object as the server would store it (unknown fields pruned,
            defaults applied, `status` dropped under a status subresource), and every error
            found, each `path: message`; the list is empty when the server would accept it.
        """
        if not isinstance(obj, dict):
            return obj, [f"<root>: must be of type object, got {_json_type(obj)}"]
        key = (obj.get("apiVersion"), obj.get("kind"))
        version = None
        if isinstance(key[0], str) and isinstance(key[1], str):
            version = self._versions.get((key[0], key[1]))
        if version is None:
            known = ", ".join(f"{a} {k}" for a, k in sorted(self._versions)) or "none"
            return _to_json(obj), [
                f"apiVersion/kind: no served CRD for apiVersion={key[0]!r} kind={key[1]!r}; "
                f"known: {known}"
            ]
        validator = _Validator(resource_root=True, namespaced=version.namespaced)
        out = validator.prepare_root(obj, version.schema)
        if version.status_subresource and isinstance(out, dict):
            out.pop("status", None)
        validator.check(out, version.schema, "")
        return out, validator.finish()


def validate_against(schema: Mapping[str, Any], obj: Any) -> tuple[Any, list[str]]:
    """Checks `obj` against a bare structural OpenAPI v3 schema (no ObjectMeta at the root).

    Returns:
        The object with unknown fields pruned and defaults applied, and its errors.
    """
    validator = _Validator(resource_root=False, namespaced=True)
    out = validator.prepare_root(obj, schema)
    validator.check(out, schema, "")
    return out, validator.finish()


@dataclass(frozen=True)
class _Version:
    schema: dict[str, Any]
    status_subresource: bool
    namespaced: bool


def _served_versions(crd: dict[str, Any], file: Path) -> dict[tuple[str, str], _Version]:
    spec = crd.get("spec") or {}
    group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
    if not group or not kind:
        raise ConfigError(f"{file}: CRD has no spec.group or spec.names.kind")
    found: dict[tuple[str, str], _Version] = {}
    for version in spec.get("versions") or ():
        if not version.get("served"):
            continue
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if not isinstance(schema, dict):
            raise ConfigError(f"{file}: {kind} {version.get('name')} has no openAPIV3Schema")
        found[f"{group}/{version['name']}", kind] = _Version(
            schema=schema,
            status_subresource="status" in (version.get("subresources") or {}),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        )
    return found


class _Validator:
    """One validation run: prepare (prune, default) then check, collecting errors."""

    def __init__(self, *, resource_root: bool, namespaced: bool) -> None:
        self.resource_root = resource_root
        self.namespaced = namespaced
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path or '<root>'}: {message}")

    def finish(self) -> list[str]:
        return list(dict.fromkeys(self.errors))  # a list-map key may be reported twice

    def is_resource(self, s: _Schema, path: str) -> bool:
        return s.get(_EMBEDDED) is True or (self.resource_root and not path)

    # --- decoding: prune unknown fields and nulls, apply defaults -------------------

    def prepare_root(self, obj: Any, s: _Schema) -> Any:
        out = _to_json(obj)
        if out is None and not s.get("nullable") and "default" in s:
            out = _to_json(s["default"])
        self.prepare(out, s, "")
        return out

    def prepare(self, x: Any, s: _Schema, path: str) -> None:
        if isinstance(x, list):
            items = s.get("items")
            if isinstance(items, Mapping):
                for i, item in enumerate(x):
                    if item is None and not items.get("nullable") and "default" in items:
                        x[i] = item = _to_json(items["default"])
                    self.prepare(item, items, f"{path}[{i}]")
            return
        if not isinstance(x, dict):
            return
        props: _Schema = s.get("properties") or {}
        extra = s.get("additionalProperties")
        keep_unknown = extra is True or s.get(_PRESERVE) is True
        resource = self.is_resource(s, path)
        for k in list(x):
            if resource and k in _TYPE_META:
                if x[k] is None:
                    del x[k]
                elif k == "metadata":
                    self.prepare_meta(x[k], _key(path, k))
                continue
            sub = props.get(k, extra if isinstance(extra, Mapping) else None)
            if sub is None:
                if not keep_unknown:
                    self.error(_key(path, k), "unknown field")
                    del x[k]
            elif x[k] is None and not sub.get("nullable"):
                if "default" in sub:
                    x[k] = _to_json(sub["default"])
                else:
                    del x[k]
        for k, sub in props.items():
            if k not in x and "default" in sub and not (resource and k in _TYPE_META):
                x[k] = _to_json(sub["default"])
        for k, v in x.items():
            sub = props.get(k, extra if isinstance(extra, Mapping) else None)
            if sub is not None and not (resource and k in _TYPE_META):
                self.prepare(v, sub, _key(path, k))

    def prepare_meta(self, meta: Any, path: str) -> None:
        if isinstance(meta, dict):
            for k in [k for k in meta if k not in _OBJECT_META]:
                self.error(_key(path, k), "unknown field")
                del meta[k]

    # --- validation; each check returns True when it found a blocking error ----------

    def check(self, x: Any, s: _Schema, path: str) -> bool:
        """Checks `x` against `s`; True when a type, enum, required or size error was found.

        Those are the errors on which the API server does not evaluate CEL rules.
        """
        if x is None and (s.get("nullable") or not (s.get("type") or _int_or_string(s))):
            return False
        if _int_or_string(s):
            if not isinstance(x, str) and _json_type(x) != "integer":
                self.error(path, f"must be an integer or a string, got {_json_type(x)}")
                return True
        elif (t := s.get("type")) and not _has_type(x, t):
            self.error(path, f"must be of type {t}, got {_json_type(x)}")
            return True
        blocking = False
        if "enum" in s and _canon(x) not in {_canon(e) for e in s["enum"]}:
            choices = ", ".join(_show(e) for e in s["enum"])
            self.error(path, f"Unsupported value: {_show(x)}: supported values: {choices}")
            blocking = True
        if isinstance(x, str):
            blocking |= self.check_string(x, s, path)
        elif isinstance(x, int | float) and not isinstance(x, bool):
            self.check_number(x, s, path)
        elif isinstance(x, list):
            blocking |= self.check_array(x, s, path)
        elif isinstance(x, dict):
            blocking |= self.check_object(x, s, path)
        blocking |= self.check_combinators(x, s, path)
        rules = s.get("x-kubernetes-validations")
        if rules and x is not None:
            if blocking:
                self.error(path, _RULES_SKIPPED)
            else:
                self.run_rules(x, rules, path)
        return blocking

    def check_string(self, x: str, s: _Schema, path: str) -> bool:
        if (most := s.get("maxLength")) is not None and len(x) > most:
            self.error(path, f"Too long: may not be more than {most} characters")
            return True
        if (least := s.get("minLength")) is not None and len(x) < least:
            self.error(path, f"should be at least {least} characters long")
        if (pattern := s.get("pattern")) is not None:
            regex = _go_regex(pattern)
            if regex is None:
                self.error(path, f"schema pattern {pattern!r} is not a valid regular expression")
            elif not regex.search(x):
                self.error(path, f"should match {pattern!r}")
        return False

    def check_number(self, x: float, s: _Schema, path: str) -> None:
        bounds = _INT_FORMATS.get(s.get("format", "")) if isinstance(x, int) else None
        if bounds and not bounds[0] <= x <= bounds[1]:
            self.error(path, f"{x} does not fit in format {s['format']}")
        low, high = s.get("minimum"), s.get("maximum")
        low_excl, high_excl = s.get("exclusiveMinimum"), s.get("exclusiveMaximum")
        if isinstance(low_excl, bool):  # OpenAPI v3.0: a flag on minimum
            low_excl, strict_low = None, low_excl
        else:  # JSON Schema: a bound of its own
            strict_low = False
        if isinstance(high_excl, bool):
            high_excl, strict_high = None, high_excl
        else:
            strict_high = False
        if low_excl is not None and x <= low_excl:
            self.error(path, f"should be greater than {low_excl}")
        if high_excl is not None and x >= high_excl:
            self.error(path, f"should be less than {high_excl}")
        if low is not None and (x <= low if strict_low else x < low):
            self.error(path, f"should be greater than {'' if strict_low else 'or equal to '}{low}")
        if high is not None and (x >= high if strict_high else x > high):
            self.error(path, f"should be less than {'' if strict_high else 'or equal to '}{high}")
        if (step := s.get("multipleOf")) and not _is_multiple(x, step):
            self.error(path, f"should be a multiple of {step}")

    def check_array(self, x: list[Any], s: _Schema, path: str) -> bool:
        blocking = False
        if (most := s.get("maxItems")) is not None and len(x) > most:
            self.error(path, f"Too many: {len(x)}: must have at most {most} items")
            blocking = True
        if (least := s.get("minItems")) is not None and len(x) < least:
            self.error(path, f"should have at least {least} items")
        items = s.get("items")
        if isinstance(items, Mapping):
            for i, item in enumerate(x):
                blocking |= self.check(item, items, f"{path}[{i}]")
        list_type = s.get("x-kubernetes-list-type")
        if list_type == "set" or (list_type is None and s.get("uniqueItems") is True):
            seen: set[str] = set()
            for i, item in enumerate(x):
                if (c := _canon(item)) in seen:
                    self.error(f"{path}[{i}]", f"Duplicate value: {c}")
                seen.add(c)
        elif list_type == "map":
            blocking |= self.check_list_map(x, s, path)
        return blocking

    def check_list_map(self, x: list[Any], s: _Schema, path: str) -> bool:
        blocking = False
        keys: list[str] = list(s.get("x-kubernetes-list-map-keys") or ())
        seen: set[tuple[str, ...]] = set()
        for i, item in enumerate(x):
            if not isinstance(item, dict):
                self.error(f"{path}[{i}]", "must be an object for an array of list-type map")
                continue
            for k in keys:
                if k not in item:
                    self.error(_key(f"{path}[{i}]", k), "Required value")
                    blocking = True
            values = tuple(_canon(item.get(k)) for k in keys)
            if values in seen:
                shown = ", ".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))
                self.error(f"{path}[{i}]", f"Duplicate value: an earlier item has {shown}")
            seen.add(values)
        return blocking

    def check_object(self, x: dict[str, Any], s: _Schema, path: str) -> bool:
        blocking = False
        for k in s.get("required") or ():
            if k not in x:
                self.error(_key(path, k), "Required value")
                blocking = True
        if (most := s.get("maxProperties")) is not None and len(x) > most:
            self.error(path, f"Too many: {len(x)}: must have at most {most} properties")
            blocking = True
        if (least := s.get("minProperties")) is not None and len(x) < least:
            self.error(path, f"should have at least {least} properties")
        props: _Schema = s.get("properties") or {}
        extra = s.get("additionalProperties")
        for k, v in x.items():
            sub = props.get(k, extra if isinstance(extra, Mapping) else None)
            if sub is not None:
                blocking |= self.check(v, sub, _key(path, k))
        if self.is_resource(s, path):
            blocking |= self.check_resource(x, path)
        return blocking

    def check_combinators(self, x: Any, s: _Schema, path: str) -> bool:
        blocking = False
        for sub in s.get("allOf") or ():
            blocking |= self.check(x, sub, path)
        if (any_of := s.get("anyOf")) and not any(self.matches(x, sub, path) for sub in any_of):
            self.error(path, "must match at least one of the schemas in anyOf")
        if (one_of := s.get("oneOf")) and sum(self.matches(x, sub, path) for sub in one_of) != 1:
            self.error(path, "must match exactly one of the schemas in oneOf")
        if (s_not := s.get("not")) is not None and self.matches(x, s_not, path):
            self.error(path, "must not match the schema in not")
        return blocking

    def matches(self, x: Any, s: _Schema, path: str) -> bool:
        saved, self.errors = self.errors, []
        try:
            self.check(x, s, path)
            return not self.errors
        finally:
            self.errors = saved

    # --- TypeMeta and ObjectMeta --------------------------------------------------

    def check_resource(self, x: dict[str, Any], path: str) -> bool:
        blocking = False
        for k in ("apiVersion", "kind"):
            if k not in x:
                self.error(_key(path, k), "Required value")
                blocking = True
            elif not isinstance(x[k], str) or not x[k]:
                self.error(_key(path, k), "must be a non-empty string")
        is_root = self.resource_root and not path
        if "metadata" in x:
            blocking |= self.check_meta(x["metadata"], _key(path, "metadata"), is_root)
        elif is_root:
            self.error("metadata.name", "Required value: name or generateName is required")
            blocking = True
        return blocking

    def check_meta(self, meta: Any, path: str, is_root: bool) -> bool:
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            self.error(path, f"must be of type object, got {_json_type(meta)}")
            return True
        blocking = False
        for k in _META_STRINGS:
            if meta.get(k) is not None and not isinstance(meta[k], str):
                self.error(_key(path, k), f"must be of type string, got {_json_type(meta[k])}")
                blocking = True
        for k in _META_INTS:
            if meta.get(k) is not None and _json_type(meta[k]) != "integer":
                self.error(_key(path, k), f"must be of type integer, got {_json_type(meta[k])}")
                blocking = True
        name, generate = meta.get("name"), meta.get("generateName")
        name_check = names.dns_subdomain_errors if is_root else names.path_segment_errors
        if isinstance(name, str) and name:
            for problem in name_check(name):
                self.error(_key(path, "name"), f"Invalid value: {name!r}: {problem}")
        elif isinstance(generate, str) and generate:
            prefix = generate[:-1] if len(generate) > 1 and generate.endswith("-") else generate
            for problem in name_check(prefix):
                self.error(_key(path, "generateName"), f"Invalid value: {generate!r}: {problem}")
        elif is_root:
            self.error(_key(path, "name"), "Required value: name or generateName is required")
            blocking = True
        namespace = meta.get("namespace")
        if isinstance(namespace, str) and namespace and (self.namespaced or not is_root):
            for problem in names.dns_label_errors(namespace):
                self.error(_key(path, "namespace"), f"Invalid value: {namespace!r}: {problem}")
        blocking |= self.check_string_map(meta.get("labels"), _key(path, "labels"), labels=True)
        blocking |= self.check_string_map(meta.get("annotations"), _key(path, "annotations"))
        for k, item_type in (("finalizers", "string"), ("ownerReferences", "object")):
            value = meta.get(k)
            if value is not None and not isinstance(value, list):
                self.error(_key(path, k), f"must be of type array, got {_json_type(value)}")
                blocking = True
            for i, item in enumerate(value or ()):
                if _json_type(item) != item_type:
                    self.error(f"{_key(path, k)}[{i}]", f"must be of type {item_type}")
                    blocking = True
                elif item_type == "object":
                    for field in ("apiVersion", "kind", "name", "uid"):
                        if not isinstance(item.get(field), str) or not item[field]:
                            self.error(_key(f"{_key(path, k)}[{i}]", field), "Required value")
                            blocking = True
        return blocking

    def check_string_map(self, value: Any, path: str, *, labels: bool = False) -> bool:
        if value is None:
            return False
        if not isinstance(value, dict):
            self.error(path, f"must be of type object, got {_json_type(value)}")
            return True
        blocking, size = False, 0
        for k, v in value.items():
            if not isinstance(v, str):
                self.error(_key(path, k), f"must be of type string, got {_json_type(v)}")
                blocking = True
                continue
            size += len(k) + len(v)
            for problem in names.qualified_name_errors(k if labels else k.lower()):
                self.error(path, f"Invalid value: {k!r}: {problem}")
            if labels:
                for problem in names.label_value_errors(v):
                    self.error(_key(path, k), f"Invalid value: {v!r}: {problem}")
        if not labels and size > _ANNOTATIONS_MAX_BYTES:
            self.error(path, f"Too long: may not be more than {_ANNOTATIONS_MAX_BYTES} bytes")
            blocking = True
        return blocking

    # --- CEL ----------------------------------------------------------------------

    def run_rules(self, x: Any, rules: list[Mapping[str, Any]], path: str) -> None:
        for where, message in cel.rule_errors(x, rules, path):
            self.error(where, message)


# --- helpers ------------------------------------------------------------------------


def _key(path: str, key: str) -> str:
    if _PLAIN_KEY_RE.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{key}]"


def _to_json(x: Any) -> Any:
    """Deep-copies YAML data into the JSON model the server sees (string keys, no dates)."""
    if isinstance(x, dict):
        return {k if isinstance(k, str) else _json_key(k): _to_json(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_to_json(v) for v in x]
    if isinstance(x, dt.date):  # an unquoted YAML timestamp reaches the server as a string
        return x.isoformat()
    return x


def _json_key(k: Any) -> str:
    return json.dumps(k) if isinstance(k, bool) or k is None else str(k)


def _json_type(x: Any) -> str:
    if x is None:
        return "null"
    for name in ("boolean", "string", "array", "object"):
        if isinstance(x, _TYPES[name]):
            return name
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer()):
        return "integer"
    return "number" if isinstance(x, float) else type(x).__name__


def _has_type(x: Any, t: str) -> bool:
    kind = _json_type(x)
    return kind == t or (t == "number" and kind == "integer")


def _is_multiple(x: float, step: float) -> bool:
    if isinstance(x, int) and isinstance(step, int):
        return x % step == 0
    try:
        return (x / step).is_integer()
    except OverflowError:
        return False


def _int_or_string(s: _Schema) -> bool:
    return s.get("x-kubernetes-int-or-string") is True


def _canon(x: Any) -> str:
    return json.dumps(x, sort_keys=True, separators=(",", ":"), default=str)


def _show(x: Any) -> str:
    return json.dumps(x, default=str)


@functools.lru_cache(maxsize=1024)
def _go_regex(pattern: str) -> re.Pattern[str] | None:
    """Compiles an RE2 pattern for `re`: in Go, `$` matches only at the very end."""
    out: list[str] = []
    in_class = escaped = False
    for ch in pattern:
        if escaped:
            out.append("Z" if ch == "z" else ch)
            escaped = False
        elif ch == "\\":
            out.append(ch)
            escaped = True
        elif in_class:
            out.append(ch)
            in_class = ch != "]"
        elif ch == "[":
            out.append(ch)
            in_class = True
        else:
            out.append(r"\Z" if ch == "$" else ch)
    try:
        return re.compile("".join(out))
    except re.error:
        return None
