"""Microsoft's Graph v1.0 CSDL, for checking JSON against the real types (BaseType and @odata.type aware)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


class GraphSchema:
    def __init__(self, path: Path):
        root = ET.parse(path).getroot()
        self.aliases: dict[str, str] = {}
        for schema in root.iter(f"{EDM}Schema"):
            if schema.get("Alias"):
                self.aliases[schema.get("Alias")] = schema.get("Namespace")
        self.types: dict[str, dict] = {}
        self.actions: dict[str, dict[str, set[str]]] = {}
        for schema in root.iter(f"{EDM}Schema"):
            ns = schema.get("Namespace")
            for kind in ("EntityType", "ComplexType"):
                for el in schema.findall(f"{EDM}{kind}"):
                    props = {}
                    for p in el:
                        if p.tag in (f"{EDM}Property", f"{EDM}NavigationProperty"):
                            props[p.get("Name")] = self.qualify(p.get("Type"))
                    self.types[f"{ns}.{el.get('Name')}"] = {
                        "base": self.qualify(el.get("BaseType")) if el.get("BaseType") else None,
                        "props": props,
                    }
            for el in schema.findall(f"{EDM}Action") + schema.findall(f"{EDM}Function"):
                params = self.actions.setdefault(f"{ns}.{el.get('Name')}", {})
                for p in el.findall(f"{EDM}Parameter"):
                    params.setdefault(p.get("Name"), set()).add(self.qualify(p.get("Type")))

    def qualify(self, name: str | None) -> str:
        if not name:
            return ""
        inner = name[len("Collection("):-1] if name.startswith("Collection(") else name
        prefix, _, rest = inner.rpartition(".")
        full = f"{self.aliases.get(prefix, prefix)}.{rest}" if prefix else inner
        return f"Collection({full})" if name.startswith("Collection(") else full

    def full_name(self, short: str) -> str:
        return short if "." in short else f"microsoft.graph.{short}"

    def lineage(self, type_name: str) -> list[str]:
        chain = []
        current = self.full_name(type_name)
        while current:
            chain.append(current)
            current = self.types[current]["base"] if current in self.types else None
        return chain

    def properties(self, type_name: str) -> dict[str, str]:
        props: dict[str, str] = {}
        for name in reversed(self.lineage(type_name)):
            props.update(self.types.get(name, {}).get("props", {}))
        return props

    def check(self, value, type_name: str, where: str = "$") -> list[str]:
        """Problems: properties that do not exist on the (possibly derived) Graph type."""
        problems: list[str] = []
        if type_name.startswith("Collection("):
            type_name = type_name[len("Collection("):-1]
        type_name = self.full_name(type_name)
        if type_name.startswith("Edm."):
            return problems
        if isinstance(value, list):
            for i, item in enumerate(value):
                problems += self.check(item, type_name, f"{where}[{i}]")
            return problems
        if not isinstance(value, dict):
            return problems
        if type_name not in self.types:
            return [f"{where}: unknown Graph type {type_name}"]
        declared = value.get("@odata.type")
        if declared:
            derived = self.qualify(declared.lstrip("#"))
            derived = next((t for t in self.types if t.lower() == derived.lower()), derived)
            if derived not in self.types:
                return [f"{where}: unknown @odata.type {declared}"]
            if type_name not in self.lineage(derived):
                problems.append(f"{where}: {derived} does not derive from {type_name}")
            type_name = derived
        props = self.properties(type_name)
        for key, item in value.items():
            if key.startswith("@odata.") or key.startswith("@microsoft.graph."):
                continue
            if key not in props:
                problems.append(f"{where}.{key}: no such property on {type_name}")
                continue
            if item is not None:
                problems += self.check(item, props[key], f"{where}.{key}")
        return problems

    def check_action(self, body: dict, action: str, where: str = "$") -> list[str]:
        """An action's JSON body: parameter names (case-insensitive, as Graph accepts) and their types."""
        params = self.actions.get(self.full_name(action))
        if params is None:
            return [f"{where}: unknown action {action}"]
        by_lower = {name.lower(): types for name, types in params.items()}
        problems = []
        for key, item in body.items():
            types = by_lower.get(key.lower())
            if types is None:
                problems.append(f"{where}.{key}: no such parameter of {action}")
                continue
            for t in types:
                if not t.startswith(("Edm.", "Collection(Edm.")):
                    problems += self.check(item, t, f"{where}.{key}")
        return problems
