"""What every kind of the API shares: the group and version, the wire conventions, the object envelope.

The kind modules (`purifier`, `rental`, `payment`, `delivery`) build on these pieces; `crdgen` reads the
`Resource` of each kind to write its CustomResourceDefinition, and handlers use the same `Resource` to
name what they watch, so the plural written in the CRD and the plural Kopf subscribes to cannot drift.
The constrained string types here are shared by several kinds and carry their validation with them, so a
name is checked the same way wherever it appears.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any, Final, Self

import pydantic
from pydantic import alias_generators

__all__ = [
    "AGE_COLUMN",
    "API_VERSION",
    "CATEGORY",
    "DNS_SUBDOMAIN_MAX_LENGTH",
    "DNS_SUBDOMAIN_PATTERN",
    "GROUP",
    "VERSION",
    "CurrencyCode",
    "CustomerId",
    "DnsSubdomain",
    "KubeObject",
    "ObjectMeta",
    "PrinterColumn",
    "Resource",
    "WireModel",
    "immutable",
    "one_way_flag",
]

GROUP: Final = "rental.purifier.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
# `kubectl get purifier-rental` lists all four kinds.
CATEGORY: Final = "purifier-rental"

# The DNS-1123 subdomain rule Kubernetes applies to object names (lowercase alphanumerics, '-' and
# '.', alphanumeric at both ends of each label); references to other objects must obey it too.
DNS_SUBDOMAIN_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_SUBDOMAIN_MAX_LENGTH: Final = 253

DnsSubdomain = Annotated[
    str,
    pydantic.Field(min_length=1, max_length=DNS_SUBDOMAIN_MAX_LENGTH, pattern=DNS_SUBDOMAIN_PATTERN),
]
"""The name of another object in the same namespace."""

CurrencyCode = Annotated[str, pydantic.Field(pattern=r"^[A-Z]{3}$")]
"""An ISO 4217 alphabetic currency code such as KRW or USD (shape only: the list of codes changes)."""

# Customer ids travel in MyPage URLs (/api/v1/customers/{id}), so no '/', '?', '#' or whitespace.
# At least one character that is not a dot: "." and ".." are dot segments that every URL parser
# normalises away, so such a customer could never reach their MyPage.
CustomerId = Annotated[
    str,
    pydantic.Field(
        min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@+-]*[A-Za-z0-9_:@+-][A-Za-z0-9._:@+-]*$"
    ),
]
"""The customer's id in the business's own customer system."""


def immutable(path: str, why: str) -> dict[str, Any]:
    """The CEL rule that refuses any change of the field at `path` (written on the field itself)."""
    return {
        "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": f"{path} is immutable: {why}"}]
    }


def one_way_flag(field: str) -> dict[str, Any]:
    """The CEL rule, on the object holding the boolean `field`, that lets it go from false to true only."""
    return {
        "x-kubernetes-validations": [
            {
                "rule": f"!has(oldSelf.{field}) || !oldSelf.{field} || (has(self.{field}) && self.{field})",
                "message": f"spec.{field} cannot be set back to false once true",
                "fieldPath": f".{field}",
            }
        ]
    }


class WireModel(pydantic.BaseModel):
    """Base of every API model: camelCase on the wire, snake_case in Python.

    Unknown fields are ignored rather than refused: the API server already prunes what the schema does
    not know, and an operator reading objects written by a newer version of itself must not fail on
    a field it has never heard of (tolerant reader).
    """

    model_config = pydantic.ConfigDict(
        alias_generator=alias_generators.to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="ignore",
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict to send to the API server: camelCase keys, unset optionals left out.

        Left out is not cleared: to remove a field with a merge patch, put an explicit None in the patch.
        """
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ObjectMeta(WireModel):
    """The part of Kubernetes object metadata the operator reads."""

    name: str | None = pydantic.Field(
        default=None, description="Name of the object, unique in its namespace."
    )
    namespace: str | None = pydantic.Field(default=None, description="Namespace the object lives in.")
    uid: str | None = pydantic.Field(default=None, description="Unique id the API server gave the object.")
    generation: int | None = pydantic.Field(
        default=None, description="Sequence number of the desired state, bumped on every spec change."
    )
    resource_version: str | None = pydantic.Field(
        default=None, description="Opaque version of the whole object, for optimistic concurrency."
    )
    labels: dict[str, str] = pydantic.Field(default_factory=dict, description="Labels of the object.")
    annotations: dict[str, str] = pydantic.Field(
        default_factory=dict, description="Annotations of the object."
    )
    finalizers: list[str] = pydantic.Field(
        default_factory=list, description="Finalizers that must be removed before the object is deleted."
    )
    creation_timestamp: pydantic.AwareDatetime | None = pydantic.Field(
        default=None, description="When the object was created."
    )
    deletion_timestamp: pydantic.AwareDatetime | None = pydantic.Field(
        default=None, description="When deletion was requested; set while finalizers still run."
    )


class KubeObject(WireModel):
    """The envelope shared by the four kinds; each kind adds `kind`, `spec` and `status`."""

    api_version: str = pydantic.Field(
        default=API_VERSION,
        description=(
            "APIVersion defines the versioned schema of this representation of an object. "
            "Servers should convert recognized schemas to the latest internal value, and may reject "
            "unrecognized values."
        ),
    )
    metadata: ObjectMeta = pydantic.Field(default_factory=ObjectMeta, description="Standard object metadata.")

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Self:
        """Parse a whole object as Kopf hands it to a handler (`body`) or as read from YAML."""
        return cls.model_validate(body)


@dataclasses.dataclass(frozen=True)
class PrinterColumn:
    """One column of `kubectl get` output for a kind."""

    name: str
    json_path: str
    type: str
    description: str
    # 0 shows in plain `kubectl get`; 1 only with `-o wide`.
    priority: int = 0


AGE_COLUMN: Final = PrinterColumn(
    name="Age",
    json_path=".metadata.creationTimestamp",
    type="date",
    description="Time since the object was created.",
)


@dataclasses.dataclass(frozen=True)
class Resource:
    """The naming of one kind in the API: what the CRD declares and what handlers subscribe to."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    columns: tuple[PrinterColumn, ...]
    group: str = GROUP
    version: str = VERSION

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def crd_name(self) -> str:
        """The CustomResourceDefinition's own name, `<plural>.<group>`."""
        return f"{self.plural}.{self.group}"
