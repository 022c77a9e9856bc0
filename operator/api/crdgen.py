"""Generates the CustomResourceDefinitions in crds/ from the pydantic models, so the two cannot disagree.

The models are the one source of truth: their fields, constraints and descriptions become the CRDs'
structural OpenAPI schemas (and so `kubectl explain`), their `json_schema_extra` carries what only the API
server can check (CEL transition rules, list types), and each kind's `meta.Resource` names the CRD and its
printer columns. `scripts/check` runs `--check`; after changing a model, run

    python -m rental_operator.api.crdgen --write crds

How a pydantic JSON schema becomes a Kubernetes structural schema (`structural_schema`):
- `$ref`s are inlined; keys next to a `$ref` (the field's own description) win over the referenced
  model's (its docstring).
- `Optional[X]` (`anyOf: [X, null]`) becomes plain X: an absent field is how Kubernetes says "unset",
  and a null default is dropped.
- `exclusiveMinimum: n` on an integer becomes `minimum: n + 1` (apiextensions/v1 has no numeric form).
- `title` is dropped; `description`, `type`, `format`, `enum`, `default`, bounds, `pattern`, lengths,
  `items`, `properties`, `required` and every `x-kubernetes-*` extension are kept.
- Any other keyword is an error rather than silently lost, so a new kind of constraint in a model
  cannot quietly go unenforced by the API server.
- `metadata` is only `type: object` (the API server owns its schema); `status` keeps no defaults
  (the operator writes status, and defaults there are the model's business, not the server's).
"""

from __future__ import annotations

import argparse
import copy
import difflib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import yaml

from rental_operator.api import delivery, meta, payment, purifier, rental

__all__ = [
    "KINDS",
    "CrdGenerationError",
    "check",
    "crd",
    "crds",
    "file_name",
    "main",
    "render",
    "structural_schema",
    "write",
]

# Each kind's naming and printer columns, with the model of its whole object.
KINDS: Final[tuple[tuple[meta.Resource, type[meta.KubeObject]], ...]] = (
    (purifier.RESOURCE, purifier.Purifier),
    (rental.RESOURCE, rental.Rental),
    (payment.RESOURCE, payment.Payment),
    (delivery.RESOURCE, delivery.Delivery),
)

HEADER: Final = (
    "# Generated from the pydantic models in operator/api by\n"
    "#   python -m rental_operator.api.crdgen --write crds\n"
    "# Do not edit by hand: change the models and regenerate (scripts/check fails on a stale file).\n"
)

LABELS: Final = {
    "app.kubernetes.io/name": "purifier-rental-operator",
    "app.kubernetes.io/part-of": "purifier-rental",
}

# Keywords copied as they are, in the order they are written out (stable, and readable top-down).
_KEPT: Final = (
    "description",
    "type",
    "format",
    "enum",
    "default",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
)
_STRUCTURE: Final = ("items", "additionalProperties", "properties", "required")
_IGNORED: Final = frozenset({"title", "$defs"})


class CrdGenerationError(Exception):
    """A model uses something the generator cannot express in a Kubernetes structural schema."""


def structural_schema(node: Mapping[str, Any], defs: Mapping[str, Any], path: str = "") -> dict[str, Any]:
    """Convert one pydantic JSON schema node (and everything under it) to a structural schema node."""
    base, rest = _flatten(node, defs, path)
    own: dict[str, Any] = {}
    for key in rest:
        own.update(_convert_keyword(key, rest, defs, path))
    merged = {**base, **own}
    if "type" not in merged:
        raise CrdGenerationError(f"{path or '<root>'}: no type (structural schemas need one everywhere)")
    return _ordered(merged)


def _flatten(
    node: Mapping[str, Any], defs: Mapping[str, Any], path: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split node into what it stands for ($ref target, Optional's non-null branch) and its own keys."""
    rest = dict(node)
    base: dict[str, Any] = {}
    if "$ref" in rest:
        base = structural_schema(_resolve(rest.pop("$ref"), defs, path), defs, path)
    if "allOf" in rest:
        branches = rest.pop("allOf")
        if len(branches) != 1:
            raise CrdGenerationError(f"{path or '<root>'}: allOf with several branches is not supported")
        base = structural_schema(branches[0], defs, path)
    if "anyOf" in rest:
        branches = [branch for branch in rest.pop("anyOf") if branch != {"type": "null"}]
        if len(branches) != 1:
            raise CrdGenerationError(f"{path or '<root>'}: unions other than Optional[X] are not supported")
        base = structural_schema(branches[0], defs, path)
        if "default" in rest and rest["default"] is None:
            del rest["default"]
    return base, rest


def _convert_keyword(key: str, node: Mapping[str, Any], defs: Mapping[str, Any], path: str) -> dict[str, Any]:
    """The structural schema keys that node's `key` becomes (none, one, or a renamed one)."""
    value = node[key]
    result: dict[str, Any] = {}
    if key in _KEPT or key.startswith("x-kubernetes-"):
        result[key] = copy.deepcopy(value)
    elif key == "exclusiveMinimum":
        result["minimum"] = _integer_bound(node, key, value, +1, path)
    elif key == "exclusiveMaximum":
        result["maximum"] = _integer_bound(node, key, value, -1, path)
    elif key == "properties":
        result[key] = {name: structural_schema(sub, defs, f"{path}.{name}") for name, sub in value.items()}
    elif key == "items":
        result[key] = structural_schema(value, defs, f"{path}[]")
    elif key == "additionalProperties":
        # `additionalProperties: false` is what pruning does anyway; structural schemas forbid it next
        # to `properties`.
        if isinstance(value, Mapping):
            result[key] = structural_schema(value, defs, f"{path}{{}}")
    elif key == "required":
        result[key] = list(value)
    elif key not in _IGNORED:
        raise CrdGenerationError(f"{path or '<root>'}: JSON schema keyword {key!r} has no CRD equivalent")
    return result


def _resolve(ref: str, defs: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    prefix = "#/$defs/"
    if not ref.startswith(prefix) or ref[len(prefix) :] not in defs:
        raise CrdGenerationError(f"{path or '<root>'}: cannot resolve $ref {ref!r}")
    target: Mapping[str, Any] = defs[ref[len(prefix) :]]
    return target


def _integer_bound(node: Mapping[str, Any], key: str, value: Any, step: int, path: str) -> int:
    # apiextensions.k8s.io/v1 only has the boolean exclusiveMinimum/Maximum next to minimum/maximum;
    # for integers the inclusive bound one step further says the same thing more plainly.
    if node.get("type") != "integer" or not isinstance(value, int):
        raise CrdGenerationError(f"{path}: {key} is only supported on integers")
    return value + step


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    order = [*_KEPT, *_STRUCTURE]
    known = [key for key in order if key in node]
    extensions = sorted(key for key in node if key not in order)
    return {key: node[key] for key in [*known, *extensions]}


def _without_defaults(node: dict[str, Any]) -> dict[str, Any]:
    result = {key: value for key, value in node.items() if key != "default"}
    if "properties" in result:
        result["properties"] = {name: _without_defaults(sub) for name, sub in result["properties"].items()}
    if "items" in result:
        result["items"] = _without_defaults(result["items"])
    return result


def openapi_schema(model: type[meta.KubeObject]) -> dict[str, Any]:
    """The `openAPIV3Schema` of one kind, from the model of its whole object."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    defs = schema.get("$defs", {})
    properties = schema["properties"]
    unexpected = set(properties) - {"apiVersion", "kind", "metadata", "spec", "status"}
    if unexpected:
        raise CrdGenerationError(f"{model.__name__}: unexpected top-level fields {sorted(unexpected)}")
    return {
        "description": schema["description"],
        "type": "object",
        "properties": {
            # apiVersion and kind are the API server's to check; their model defaults are for Python.
            "apiVersion": {"description": properties["apiVersion"]["description"], "type": "string"},
            "kind": {"description": properties["kind"]["description"], "type": "string"},
            "metadata": {"type": "object"},
            "spec": structural_schema(properties["spec"], defs, "spec"),
            "status": _without_defaults(structural_schema(properties["status"], defs, "status")),
        },
        "required": [name for name in schema.get("required", []) if name in ("spec", "status")],
    }


def _check_columns(resource: meta.Resource, schema: Mapping[str, Any]) -> None:
    for column in resource.columns:
        if column.json_path.startswith(".metadata."):
            continue
        node: Mapping[str, Any] = schema
        for step in column.json_path.strip(".").split("."):
            properties = node.get("properties", {})
            if step not in properties:
                raise CrdGenerationError(
                    f"{resource.kind}: printer column {column.name} points at {column.json_path}, "
                    "which the schema does not have"
                )
            node = properties[step]


def crd(resource: meta.Resource, model: type[meta.KubeObject]) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind, as a plain dict."""
    schema = openapi_schema(model)
    _check_columns(resource, schema)
    columns = [
        {
            "name": column.name,
            "type": column.type,
            "description": column.description,
            "jsonPath": column.json_path,
            **({"priority": column.priority} if column.priority else {}),
        }
        for column in resource.columns
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": resource.crd_name, "labels": dict(LABELS)},
        "spec": {
            "group": resource.group,
            "names": {
                "kind": resource.kind,
                "listKind": f"{resource.kind}List",
                "plural": resource.plural,
                "singular": resource.singular,
                "shortNames": list(resource.short_names),
                "categories": [meta.CATEGORY],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": resource.version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def crds() -> list[tuple[meta.Resource, dict[str, Any]]]:
    """Every kind's CRD, with the kind's naming."""
    return [(resource, crd(resource, model)) for resource, model in KINDS]


class _Dumper(yaml.SafeDumper):
    # Shared sub-objects must be written out in full, never as YAML anchors and aliases.
    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(manifest: Mapping[str, Any]) -> str:
    """One manifest as the YAML text committed in crds/ (deterministic: insertion order, fixed width)."""
    body = yaml.dump(
        manifest, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False
    )
    return HEADER + body


def file_name(resource: meta.Resource) -> str:
    return f"{resource.crd_name}.yaml"


def write(directory: Path) -> list[Path]:
    """Write every CRD into directory; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for resource, manifest in crds():
        target = directory / file_name(resource)
        target.write_text(render(manifest), encoding="utf-8")
        written.append(target)
    return written


def check(directory: Path) -> list[str]:
    """Problems with the CRDs committed in directory: unified diffs of stale files, missing or stray ones."""
    problems = []
    expected = set()
    for resource, manifest in crds():
        target = directory / file_name(resource)
        expected.add(target.name)
        fresh = render(manifest)
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != fresh:
            diff = difflib.unified_diff(
                current.splitlines(keepends=True),
                fresh.splitlines(keepends=True),
                fromfile=f"{target} (committed)",
                tofile=f"{target} (generated)",
            )
            problems.append("".join(diff) if current else f"{target}: missing\n")
    for stray in sorted(directory.glob(f"*.{meta.GROUP}.yaml")):
        if stray.name not in expected:
            problems.append(f"{stray}: not generated from any model (a kind was removed or renamed?)\n")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rental_operator.api.crdgen",
        description="Generate the CRDs from the pydantic models (no option: print them all to stdout).",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", metavar="DIR", type=Path, help="write one file per CRD into DIR")
    action.add_argument(
        "--check", metavar="DIR", type=Path, help="exit 1 with a diff if the CRDs in DIR are stale"
    )
    args = parser.parse_args(argv)

    if args.write is not None:
        for path in write(args.write):
            print(f"wrote {path}", file=sys.stderr)
        return 0
    if args.check is not None:
        problems = check(args.check)
        for problem in problems:
            sys.stdout.write(problem)
        if problems:
            fix = f"python -m rental_operator.api.crdgen --write {args.check}"
            print(f"crdgen: {args.check} is stale; run: {fix}", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write("---\n".join(render(manifest) for _, manifest in crds()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
