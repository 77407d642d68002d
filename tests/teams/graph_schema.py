"""Microsoft's Graph v1.0 CSDL, for checking JSON against the real types (BaseType and @odata.type aware).

``check`` reports, for a JSON value of a Graph type: property names that the (derived) type does
not have, values of the wrong JSON kind or format for their primitive type (Edm.Int32 an int and
not a bool, Edm.DateTimeOffset an ISO 8601 string with an offset, ...), enum values that are not
members, a list where one value belongs or one value where a collection belongs, null where the
property is ``Nullable="false"``, and the top-level keys the caller names as required.
``check_action`` does the same for an action's parameters, and reports a missing parameter that
is ``Nullable="false"`` in the CSDL.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"

INT_RANGES = {
    "Edm.Byte": (0, 2**8 - 1),
    "Edm.SByte": (-(2**7), 2**7 - 1),
    "Edm.Int16": (-(2**15), 2**15 - 1),
    "Edm.Int32": (-(2**31), 2**31 - 1),
    "Edm.Int64": (-(2**63), 2**63 - 1),
}
FLOATS = {"Edm.Double", "Edm.Single", "Edm.Decimal"}
UNCHECKED = {"Edm.Stream", "Edm.Untyped", "Edm.PrimitiveType"}

# OData ABNF (dateTimeOffsetValue, dateValue, timeOfDayValue); durations as ISO 8601.
DATE_TIME_OFFSET = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
TIME_OF_DAY = re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?")
DURATION = re.compile(r"-?P(?=.)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=.)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?")
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")  # standard or URL-safe alphabet (OData JSON uses base64url)


def kind(value) -> str:
    """The JSON value's kind, as the messages name it."""
    return "null" if value is None else type(value).__name__


def _valid_date_time_offset(text: str) -> bool:
    m = DATE_TIME_OFFSET.fullmatch(text)
    if not m:
        return False
    day, hour, minute, second, fraction, offset = m.groups()
    fraction = f".{fraction[:6].ljust(6, '0')}" if fraction else ""
    offset = "+00:00" if offset == "Z" else offset
    try:
        datetime.fromisoformat(f"{day}T{hour}:{minute}:{second or '00'}{fraction}{offset}")
    except ValueError:
        return False
    return True


def _valid_date(text: str) -> bool:
    if not DATE.fullmatch(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _valid_time_of_day(text: str) -> bool:
    m = TIME_OF_DAY.fullmatch(text)
    return bool(m) and int(m[1]) < 24 and int(m[2]) < 60 and int(m[3] or 0) < 60


def _valid_base64(text: str) -> bool:
    if not BASE64.fullmatch(text):
        return False
    return len(text) % 4 == 0 if text.endswith("=") else len(text) % 4 != 1


FORMATS = {
    "Edm.DateTimeOffset": _valid_date_time_offset,
    "Edm.Date": _valid_date,
    "Edm.TimeOfDay": _valid_time_of_day,
    "Edm.Duration": lambda text: bool(DURATION.fullmatch(text)),
    "Edm.Guid": lambda text: bool(GUID.fullmatch(text)),
    "Edm.Binary": _valid_base64,
    "Edm.String": lambda text: True,
}


class GraphSchema:
    def __init__(self, path: Path):
        root = ET.parse(path).getroot()
        self.aliases: dict[str, str] = {}
        for schema in root.iter(f"{EDM}Schema"):
            if schema.get("Alias"):
                self.aliases[schema.get("Alias")] = schema.get("Namespace")
        # type -> {"base", "props": {name: type}, "not_null": {names}, "abstract"}
        self.types: dict[str, dict] = {}
        self.enums: dict[str, dict] = {}  # type -> {"members": {names}, "flags": bool}
        # action or function -> overloads: {"binding": type or None, "params": {name: (type, nullable)}}
        self.actions: dict[str, list[dict]] = {}
        for schema in root.iter(f"{EDM}Schema"):
            ns = schema.get("Namespace")
            for kind_ in ("EntityType", "ComplexType"):
                for el in schema.findall(f"{EDM}{kind_}"):
                    props, not_null = {}, set()
                    for p in el:
                        if p.tag in (f"{EDM}Property", f"{EDM}NavigationProperty"):
                            props[p.get("Name")] = self.qualify(p.get("Type"))
                            if p.get("Nullable") == "false":
                                not_null.add(p.get("Name"))
                    self.types[f"{ns}.{el.get('Name')}"] = {
                        "base": self.qualify(el.get("BaseType")) if el.get("BaseType") else None,
                        "props": props,
                        "not_null": not_null,
                        "abstract": el.get("Abstract") == "true",
                    }
            for el in schema.findall(f"{EDM}EnumType"):
                self.enums[f"{ns}.{el.get('Name')}"] = {
                    "members": {m.get("Name") for m in el.findall(f"{EDM}Member")},
                    "flags": el.get("IsFlags") == "true",
                }
            for el in schema.findall(f"{EDM}Action") + schema.findall(f"{EDM}Function"):
                params = el.findall(f"{EDM}Parameter")
                binding = None
                if el.get("IsBound") == "true" and params:  # the first parameter is the bound resource (the URL)
                    binding, params = self.qualify(params[0].get("Type")), params[1:]
                self.actions.setdefault(f"{ns}.{el.get('Name')}", []).append({
                    "binding": binding,
                    "params": {p.get("Name"): (self.qualify(p.get("Type")), p.get("Nullable") != "false")
                               for p in params},
                })
        self.by_lower = {name.lower(): name for name in self.types}
        self._facets: dict[str, tuple[dict[str, str], set[str]]] = {}

    def qualify(self, name: str | None) -> str:
        if not name:
            return ""
        inner = name[len("Collection("):-1] if name.startswith("Collection(") else name
        prefix, _, rest = inner.rpartition(".")
        full = f"{self.aliases.get(prefix, prefix)}.{rest}" if prefix else inner
        return f"Collection({full})" if name.startswith("Collection(") else full

    def full_name(self, short: str) -> str:
        if short.startswith("Collection("):
            return f"Collection({self.full_name(short[len('Collection('):-1])})"
        return self.qualify(short) if "." in short else f"microsoft.graph.{short}"

    def lineage(self, type_name: str) -> list[str]:
        chain = []
        current = self.full_name(type_name)
        while current:
            chain.append(current)
            current = self.types[current]["base"] if current in self.types else None
        return chain

    def facets(self, type_name: str) -> tuple[dict[str, str], set[str]]:
        """A structured type's properties (own and inherited: name -> type) and the non-nullable ones."""
        type_name = self.full_name(type_name)
        if type_name not in self._facets:
            props: dict[str, str] = {}
            not_null: set[str] = set()
            for name in reversed(self.lineage(type_name)):
                props.update(self.types.get(name, {}).get("props", {}))
                not_null |= self.types.get(name, {}).get("not_null", set())
            self._facets[type_name] = (props, not_null)
        return self._facets[type_name]

    def properties(self, type_name: str) -> dict[str, str]:
        return dict(self.facets(type_name)[0])

    def check(self, value, type_name: str, where: str = "$", required: Iterable[str] = ()) -> list[str]:
        """Problems with a JSON value of a Graph type (see the module's docstring).

        ``required``: keys the top-level object (each item, for a collection) must have, as
        Graph's documentation for the request names them; ``x@odata.bind`` counts for ``x``."""
        type_name = self.full_name(type_name)
        problems: list[str] = []
        required = list(required)
        if required:
            items = value if type_name.startswith("Collection(") and isinstance(value, list) else [value]
            paths = [f"{where}[{i}]" for i in range(len(items))] if items is value else [where]
            element = type_name.removeprefix("Collection(").removesuffix(")")
            for item, path in zip(items, paths, strict=True):
                if not isinstance(item, dict):
                    continue
                self._check_required_names(required, element, item)
                for key in required:
                    if key not in item and f"{key}@odata.bind" not in item:
                        problems.append(f"{path}: missing required key {key!r}")
        return problems + self._check(value, type_name, where, nullable=True)

    def _check_required_names(self, required: list[str], type_name: str, item: dict) -> None:
        names = set(self.facets(type_name)[0])
        if isinstance(item.get("@odata.type"), str):
            names |= set(self.facets(self._derived(item["@odata.type"]))[0])
        unknown = [key for key in required if key not in names]
        if unknown:
            raise ValueError(f"required keys {unknown} are not properties of {type_name}")

    def _derived(self, declared: str) -> str:
        derived = self.qualify(declared.lstrip("#"))
        return self.by_lower.get(derived.lower(), derived)

    def _check(self, value, type_name: str, where: str, nullable: bool) -> list[str]:
        if value is None:
            return [] if nullable else [f"{where}: expected {type_name}, got null"]
        if type_name.startswith("Collection("):
            if not isinstance(value, list):
                return [f"{where}: expected {type_name}, got {kind(value)}"]
            element = type_name[len("Collection("):-1]
            problems = []
            for i, item in enumerate(value):
                problems += self._check(item, element, f"{where}[{i}]", nullable)
            return problems
        if isinstance(value, list):
            return [f"{where}: expected {type_name}, got list"]
        if type_name.startswith("Edm."):
            return self._check_primitive(value, type_name, where)
        if type_name in self.enums:
            return self._check_enum(value, type_name, where)
        if type_name not in self.types:
            return [f"{where}: unknown Graph type {type_name}"]
        if not isinstance(value, dict):
            return [f"{where}: expected {type_name}, got {kind(value)}"]
        problems = []
        declared = value.get("@odata.type")
        if declared:
            derived = self._derived(declared)
            if derived not in self.types:
                return [f"{where}: unknown @odata.type {declared}"]
            if type_name not in self.lineage(derived):
                problems.append(f"{where}: {derived} does not derive from {type_name}")
            type_name = derived
        if self.types[type_name]["abstract"]:
            problems.append(f"{where}: {type_name} is abstract (@odata.type must name a concrete type)")
        props, not_null = self.facets(type_name)
        for key, item in value.items():
            if key.startswith("@odata.") or key.startswith("@microsoft.graph."):
                continue
            name, at, annotation = key.partition("@")
            if name not in props:
                problems.append(f"{where}.{key}: no such property on {type_name}")
                continue
            if at:  # a property annotation, e.g. teamsApp@odata.bind: a URL (or URLs, for a collection)
                if annotation == "odata.bind" and not (
                        isinstance(item, str) or isinstance(item, list) and all(isinstance(i, str) for i in item)):
                    problems.append(f"{where}.{key}: expected a URL, got {kind(item)}")
                continue
            problems += self._check(item, props[name], f"{where}.{key}", name not in not_null)
        return problems

    def _check_primitive(self, value, type_name: str, where: str) -> list[str]:
        if type_name in UNCHECKED:
            return []
        if type_name == "Edm.Boolean":
            ok = isinstance(value, bool)
        elif type_name in INT_RANGES:
            ok = isinstance(value, int) and not isinstance(value, bool)
            low, high = INT_RANGES[type_name]
            if ok and not low <= value <= high:
                return [f"{where}: {value} is out of range for {type_name}"]
        elif type_name in FLOATS:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) or (
                type_name != "Edm.Decimal" and value in ("NaN", "INF", "-INF"))
        elif type_name in FORMATS:
            ok = isinstance(value, str)
            if ok and not FORMATS[type_name](value):
                return [f"{where}: {value!r} is not a valid {type_name}"]
        else:
            return [f"{where}: unknown primitive type {type_name}"]
        return [] if ok else [f"{where}: expected {type_name}, got {kind(value)}"]

    def _check_enum(self, value, type_name: str, where: str) -> list[str]:
        if not isinstance(value, str):
            return [f"{where}: expected {type_name}, got {kind(value)}"]
        enum = self.enums[type_name]
        names = [name.strip() for name in value.split(",")] if enum["flags"] else [value]
        return [f"{where}: {name!r} is not a member of {type_name}" for name in names if name not in enum["members"]]

    def check_action(self, body: dict, action: str, where: str = "$", binding: str | None = None) -> list[str]:
        """An action's JSON body: parameter names (case-insensitive, as Graph accepts), their types,
        and the parameters that are not nullable (required).

        Actions are overloaded by what they are bound to (``sendActivityNotification`` of a chat,
        a team or a userTeamwork): ``binding`` picks the overloads for that type; without it the
        body is checked against each overload and the one that fits best is reported."""
        overloads = self.actions.get(self.full_name(action))
        if overloads is None:
            return [f"{where}: unknown action {action}"]
        if binding is not None:
            bound_to = self.full_name(binding)
            overloads = [o for o in overloads if o["binding"] and self._binds(bound_to, o["binding"])]
            if not overloads:
                return [f"{where}: {action} cannot be bound to {bound_to}"]
        if not isinstance(body, dict):
            return [f"{where}: expected the parameters of {action}, got {kind(body)}"]
        return min((self._check_parameters(body, o["params"], action, where) for o in overloads), key=len)

    def _binds(self, given: str, declared: str) -> bool:
        if given.startswith("Collection(") != declared.startswith("Collection("):
            return False
        given = given.removeprefix("Collection(").removesuffix(")")
        declared = declared.removeprefix("Collection(").removesuffix(")")
        return declared in self.lineage(given)

    def _check_parameters(self, body: dict, params: dict, action: str, where: str) -> list[str]:
        by_lower = {name.lower(): name for name in params}
        problems, given = [], set()
        for key, item in body.items():
            name = by_lower.get(key.lower())
            if name is None:
                problems.append(f"{where}.{key}: no such parameter of {action}")
                continue
            given.add(name)
            type_name, nullable = params[name]
            problems += self._check(item, type_name, f"{where}.{key}", nullable)
        problems += [f"{where}: missing required key {name!r}"
                     for name, (_, nullable) in params.items() if not nullable and name not in given]
        return problems
