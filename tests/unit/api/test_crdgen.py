"""The CRDs in crds/ are exactly what the models generate, and that is a valid structural schema."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import pydantic
import pytest
import yaml

from rental_operator.api import crdgen, meta

REPO = Path(__file__).resolve().parents[3]
CRDS = REPO / "crds"

GENERATED = {resource.kind: manifest for resource, manifest in crdgen.crds()}


def _schema(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = GENERATED[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _nodes(node: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every schema node under node, with its field path (`[]` for list items)."""
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from _nodes(sub, f"{path}.{name}")
    if "items" in node:
        yield from _nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), Mapping):
        yield from _nodes(node["additionalProperties"], f"{path}{{}}")


def test_committed_crds_are_what_the_models_generate() -> None:
    assert crdgen.check(CRDS) == []


def test_committed_crds_are_the_four_kinds() -> None:
    names = sorted(path.name for path in CRDS.glob("*.yaml"))
    assert names == [
        "deliveries.rental.purifier.io.yaml",
        "payments.rental.purifier.io.yaml",
        "purifiers.rental.purifier.io.yaml",
        "rentals.rental.purifier.io.yaml",
    ]
    for path in CRDS.glob("*.yaml"):
        assert yaml.safe_load(path.read_text(encoding="utf-8"))["kind"] == "CustomResourceDefinition"


@pytest.mark.parametrize("kind", sorted(GENERATED))
def test_every_field_has_a_description(kind: str) -> None:
    missing = [
        path or "<root>"
        for path, node in _nodes(_schema(kind))
        # metadata belongs to the API server; list items of plain strings are described by their list.
        if path != ".metadata" and not (path.endswith("[]") and node["type"] != "object")
        if not node.get("description", "").strip()
    ]
    assert missing == []


@pytest.mark.parametrize("kind", sorted(GENERATED))
def test_schema_is_structural(kind: str) -> None:
    # What apiextensions.k8s.io/v1 accepts and this project uses; anything else is a generator bug.
    allowed = {
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
        "items",
        "additionalProperties",
        "properties",
        "required",
        "x-kubernetes-validations",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
    }
    for path, node in _nodes(_schema(kind)):
        assert "type" in node, path
        assert set(node) <= allowed, (path, set(node) - allowed)
        if node["type"] == "object" and path != ".metadata":
            assert "properties" in node or "additionalProperties" in node, path
        for required in node.get("required", []):
            assert required in node["properties"], (path, required)


@pytest.mark.parametrize("kind", sorted(GENERATED))
def test_status_has_no_server_side_defaults(kind: str) -> None:
    status = _schema(kind)["properties"]["status"]
    assert [path for path, node in _nodes(status, ".status") if "default" in node] == []


@pytest.mark.parametrize(
    ("kind", "plural", "short_name", "columns"),
    [
        ("Purifier", "purifiers", "pur", ["Model", "Fee", "Stock", "Available", "Age"]),
        ("Rental", "rentals", "rent", ["Customer", "Purifier", "Phase", "Payment", "Delivery", "Age"]),
        ("Payment", "payments", "pay", ["Rental", "Period", "Amount", "Currency", "Phase", "Age"]),
        ("Delivery", "deliveries", "dlv", ["Rental", "Phase", "Tracking", "Age"]),
    ],
)
def test_crd_naming_and_columns(kind: str, plural: str, short_name: str, columns: list[str]) -> None:
    manifest = GENERATED[kind]
    spec = manifest["spec"]
    assert manifest["metadata"]["name"] == f"{plural}.rental.purifier.io"
    assert spec["group"] == "rental.purifier.io"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["plural"] == plural
    assert spec["names"]["shortNames"] == [short_name]
    assert spec["names"]["categories"] == ["purifier-rental"]
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1"
    assert version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    default_columns = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert default_columns == columns


def test_rental_columns_point_at_the_contracted_paths() -> None:
    (version,) = GENERATED["Rental"]["spec"]["versions"]
    paths = {column["name"]: column["jsonPath"] for column in version["additionalPrinterColumns"]}
    assert paths["Customer"] == ".spec.customer.id"
    assert paths["Payment"] == ".status.payment.phase"
    assert paths["Delivery"] == ".status.delivery.phase"


def test_rental_spec_rules() -> None:
    spec = _schema("Rental")["properties"]["spec"]
    assert spec["required"] == ["purifier", "customer"]
    months = spec["properties"]["months"]
    assert (months["minimum"], months["maximum"], months["default"]) == (1, 60, 12)
    assert spec["properties"]["cancelled"]["default"] is False
    for path, field in (
        ("spec.purifier", spec["properties"]["purifier"]),
        ("spec.customer.id", spec["properties"]["customer"]["properties"]["id"]),
    ):
        (rule,) = field["x-kubernetes-validations"]
        assert rule["rule"] == "self == oldSelf", path
        assert rule["message"].startswith(f"{path} is immutable: "), path
    (raise_only,) = months["x-kubernetes-validations"]
    assert raise_only["rule"] == "self >= oldSelf"
    assert raise_only["message"].startswith("spec.months cannot be lowered")
    (one_way,) = spec["x-kubernetes-validations"]
    assert one_way["message"] == "spec.cancelled cannot be set back to false once true"
    assert "oldSelf.cancelled" in one_way["rule"]
    assert spec["properties"]["customer"]["required"] == ["id", "phone", "address"]


def test_purifier_fee_greater_than_zero_becomes_an_inclusive_minimum() -> None:
    fee = _schema("Purifier")["properties"]["spec"]["properties"]["monthlyFee"]
    assert fee["minimum"] == 1
    assert "exclusiveMinimum" not in fee


@pytest.mark.parametrize(("kind", "flag"), [("Payment", "refund"), ("Delivery", "cancelled")])
def test_operator_written_specs_are_immutable_but_for_a_one_way_flag(kind: str, flag: str) -> None:
    spec = _schema(kind)["properties"]["spec"]
    # A Payment's attempt may only rise: the Rental raises it to retry a declined charge.
    rising = {"attempt": ["self >= oldSelf"]} if kind == "Payment" else {}
    for name, field in spec["properties"].items():
        rules = [rule["rule"] for rule in field.get("x-kubernetes-validations", [])]
        assert rules == ([] if name == flag else rising.get(name, ["self == oldSelf"])), name
    (one_way,) = spec["x-kubernetes-validations"]
    assert one_way["fieldPath"] == f".{flag}"


def test_conditions_are_a_list_map_keyed_by_type() -> None:
    for kind in GENERATED:
        conditions = _schema(kind)["properties"]["status"]["properties"]["conditions"]
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        assert "type" in conditions["items"]["required"]


def test_optional_fields_become_plain_types() -> None:
    node = crdgen.structural_schema(
        {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}], "default": None, "title": "X"},
        {},
    )
    assert node == {"type": "string", "maxLength": 3}


def test_field_description_wins_over_the_referenced_models() -> None:
    defs = {"Sub": {"description": "model doc", "type": "object", "properties": {}}}
    node = crdgen.structural_schema({"$ref": "#/$defs/Sub", "description": "field doc"}, defs)
    assert node["description"] == "field doc"


def test_unknown_keywords_are_refused_rather_than_dropped() -> None:
    with pytest.raises(crdgen.CrdGenerationError, match="uniqueItems"):
        crdgen.structural_schema({"type": "array", "uniqueItems": True, "items": {"type": "string"}}, {}, "x")
    with pytest.raises(crdgen.CrdGenerationError, match="unions"):
        crdgen.structural_schema({"anyOf": [{"type": "string"}, {"type": "integer"}]}, {}, "x")


def test_printer_columns_must_exist_in_the_schema() -> None:
    class Thing(meta.KubeObject):
        """A thing."""

        kind: Literal["Thing"] = pydantic.Field(default="Thing", description="Kind of the object.")
        spec: dict[str, str] = pydantic.Field(description="Free-form.")
        status: dict[str, str] = pydantic.Field(default_factory=dict, description="Free-form.")

    resource = meta.Resource(
        kind="Thing",
        plural="things",
        singular="thing",
        short_names=(),
        columns=(meta.PrinterColumn("Size", ".spec.size", "integer", "Size."),),
    )
    with pytest.raises(crdgen.CrdGenerationError, match="Size"):
        crdgen.crd(resource, Thing)


def test_check_reports_stale_missing_and_stray_files(tmp_path: Path) -> None:
    crdgen.write(tmp_path)
    assert crdgen.check(tmp_path) == []

    rentals = tmp_path / "rentals.rental.purifier.io.yaml"
    rentals.write_text(rentals.read_text(encoding="utf-8").replace("maximum: 60", "maximum: 99"))
    (tmp_path / "payments.rental.purifier.io.yaml").unlink()
    (tmp_path / "widgets.rental.purifier.io.yaml").write_text("{}\n")

    problems = crdgen.check(tmp_path)
    assert len(problems) == 3
    assert "-                maximum: 99\n" in problems[0]
    assert "+                maximum: 60\n" in problems[0]
    assert "missing" in problems[1]
    assert "widgets" in problems[2]


def test_main_check_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert crdgen.main(["--write", str(tmp_path)]) == 0
    assert crdgen.main(["--check", str(tmp_path)]) == 0
    (tmp_path / "purifiers.rental.purifier.io.yaml").write_text("stale\n")
    assert crdgen.main(["--check", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "-stale" in captured.out
    assert "--write" in captured.err


def test_rendering_is_deterministic() -> None:
    first = [crdgen.render(manifest) for _, manifest in crdgen.crds()]
    second = [crdgen.render(manifest) for _, manifest in crdgen.crds()]
    assert first == second
    assert all("&id" not in text and "*id" not in text for text in first)
