"""Every sample manifest in samples/ parses into the models (the cluster tests apply them for real)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rental_operator.api import delivery, meta, payment, purifier, rental

REPO = Path(__file__).resolve().parents[3]
SAMPLES = sorted((REPO / "samples").glob("*.yaml"))

MODELS: dict[str, type[meta.KubeObject]] = {
    "Purifier": purifier.Purifier,
    "Rental": rental.Rental,
    "Payment": payment.Payment,
    "Delivery": delivery.Delivery,
}


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def test_there_are_samples() -> None:
    assert {path.name for path in SAMPLES} >= {"purifiers.yaml", "rentals.yaml"}


@pytest.mark.parametrize("path", SAMPLES, ids=[path.name for path in SAMPLES])
def test_sample_parses(path: Path) -> None:
    documents = _documents(path)
    assert documents
    for document in documents:
        assert document["apiVersion"] == meta.API_VERSION
        parsed = MODELS[document["kind"]].from_body(document)
        assert parsed.metadata.name


def test_sample_rentals_reference_sample_purifiers() -> None:
    purifiers = {doc["metadata"]["name"] for doc in _documents(REPO / "samples" / "purifiers.yaml")}
    rentals = [rental.Rental.from_body(doc) for doc in _documents(REPO / "samples" / "rentals.yaml")]
    assert len(purifiers) == 3
    assert len(rentals) >= 2
    assert {item.spec.purifier for item in rentals} <= purifiers
