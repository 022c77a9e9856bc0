"""runtime.store: the newest resourceVersion of each object wins; forgetting never drops a newer one;
objects are kept packed, read as private copies, with a summary kept beside each."""

from __future__ import annotations

import json
import random
import threading
from typing import Any

import pytest

from rental_operator.runtime import store


def _obj(
    name: str = "r1", rv: str | int | None = "5", *, namespace: str = "shop", uid: str = "u-1", **extra: Any
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": uid}
    if rv is not None:
        metadata["resourceVersion"] = str(rv)
    return {"metadata": metadata, **extra}


def test_observe_records_and_returns_the_object() -> None:
    objects = store.Store()
    obj = _obj(rv=5)
    assert objects.observe(obj) == obj
    assert objects.get("shop", "r1") == obj
    assert len(objects) == 1


def test_newer_version_replaces() -> None:
    objects = store.Store()
    objects.observe(_obj(rv=5, spec="old"))
    newer = _obj(rv=6, spec="new")
    assert objects.observe(newer) == newer
    assert objects.get("shop", "r1") == newer


def test_older_version_is_ignored_and_the_newer_returned() -> None:
    objects = store.Store()
    newer = objects.observe(_obj(rv=10, spec="new"))
    stale = _obj(rv=9, spec="old")
    assert objects.observe(stale) == newer
    assert objects.get("shop", "r1") == newer


def test_versions_compare_as_numbers_not_strings() -> None:
    objects = store.Store()
    ten = objects.observe(_obj(rv="10"))
    assert objects.observe(_obj(rv="9")) == ten  # "9" > "10" as strings
    hundred = _obj(rv="100")
    assert objects.observe(hundred) == hundred


@pytest.mark.parametrize("rv", [None, "", "not-a-number"])
def test_unreadable_version_never_replaces_a_known_one(rv: str | None) -> None:
    objects = store.Store()
    known = objects.observe(_obj(rv=3))
    assert objects.observe(_obj(rv=rv)) == known


def test_objects_are_keyed_by_namespace_and_name() -> None:
    objects = store.Store()
    a = objects.observe(_obj("r1", 5, namespace="a"))
    b = objects.observe(_obj("r1", 1, namespace="b"))
    c = objects.observe(_obj("r2", 1, namespace="a"))
    assert (objects.get("a", "r1"), objects.get("b", "r1"), objects.get("a", "r2")) == (a, b, c)
    assert objects.get("c", "r1") is None
    assert len(objects) == 3
    assert sorted(objects.values(), key=store.Store.key_of) == [a, c, b]
    assert store.Store.key_of(a) == ("a", "r1")


def test_recreated_object_replaces_the_deleted_one() -> None:
    objects = store.Store()
    objects.observe(_obj(rv=5, uid="old"))
    recreated = _obj(rv=8, uid="new")
    assert objects.observe(recreated) == recreated
    assert objects.observe(_obj(rv=6, uid="old")) == recreated  # a late event of the old one


def test_forget_removes_the_same_or_an_older_version() -> None:
    objects = store.Store()
    objects.observe(_obj(rv=5))
    objects.forget(_obj(rv=5))
    assert objects.get("shop", "r1") is None
    assert len(objects) == 0

    objects.observe(_obj(rv=5))
    objects.forget(_obj(rv=7))  # the deletion event carries the final version
    assert objects.get("shop", "r1") is None


def test_forget_keeps_a_newer_object() -> None:
    """A late deletion event of a previous incarnation must not drop the object that replaced it."""
    objects = store.Store()
    recreated = objects.observe(_obj(rv=9, uid="new"))
    objects.forget(_obj(rv=5, uid="old"))
    assert objects.get("shop", "r1") == recreated


def test_forget_of_an_unknown_object_is_a_noop() -> None:
    objects = store.Store()
    objects.observe(_obj("other", 1))
    objects.forget(_obj("r1", 1))
    assert len(objects) == 1


def test_values_is_a_snapshot() -> None:
    objects = store.Store()
    objects.observe(_obj("r1", 1))
    snapshot = objects.values()
    objects.observe(_obj("r2", 1))
    assert len(snapshot) == 1
    assert len(objects.values()) == 2


def test_concurrent_observers_end_with_the_newest() -> None:
    objects = store.Store()
    versions = list(range(1, 401))
    random.Random(7).shuffle(versions)
    chunks = [versions[i::8] for i in range(8)]
    start = threading.Barrier(len(chunks), timeout=10)

    def feed(chunk: list[int]) -> None:
        start.wait()
        for version in chunk:
            result = objects.observe(_obj(rv=version))
            assert int(result["metadata"]["resourceVersion"]) >= version

    threads = [threading.Thread(target=feed, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    known = objects.get("shop", "r1")
    assert known is not None
    assert known["metadata"]["resourceVersion"] == "400"


def test_reads_are_private_copies() -> None:
    objects = store.Store()
    obj = objects.observe(_obj(rv=5, status={"phase": "Pending"}))
    copy = objects.get("shop", "r1")
    assert copy == obj and copy is not obj
    assert copy is not None
    copy["status"]["phase"] = "Confirmed"
    obj["status"]["phase"] = "Rejected"  # nor does changing what was recorded after the fact
    assert objects.get("shop", "r1") == _obj(rv=5, status={"phase": "Pending"})


def test_managed_fields_are_not_kept() -> None:
    objects = store.Store()
    obj = _obj(rv=5)
    obj["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
    recorded = objects.observe(obj)
    assert "managedFields" not in recorded["metadata"]
    assert objects.get("shop", "r1") == _obj(rv=5)
    assert "managedFields" in obj["metadata"]  # the caller's object is left alone


def test_unicode_survives_packing() -> None:
    objects = store.Store()
    objects.observe(_obj(rv=5, spec={"address": "서울 강남구 \u200f<b>\x00 🚰"}))
    known = objects.get("shop", "r1")
    assert known is not None
    assert known["spec"]["address"] == "서울 강남구 \u200f<b>\x00 🚰"


def test_summaries_follow_the_newest_version_and_forgetting() -> None:
    objects: store.Store[str] = store.Store(lambda obj: str(obj.get("spec")))
    objects.observe(_obj("r1", 5, spec="a"))
    objects.observe(_obj("r2", 1, spec="b"))
    objects.observe(_obj("r1", 4, spec="stale"))
    objects.observe(_obj("r1", 6, spec="c"))
    assert sorted(objects.summaries()) == ["b", "c"]
    objects.forget(_obj("r2", 1))
    assert objects.summaries() == ["c"]


def test_a_preset_dictionary_packs_typical_objects_smaller_and_reads_them_back() -> None:
    typical = {
        "metadata": {"name": "r0", "namespace": "shop", "resourceVersion": "1"},
        "spec": {"customer": {"id": "c0", "address": "Seoul"}, "purifier": "aqua", "months": 12},
        "status": {"phase": "Confirmed", "message": "paid; delivery started", "notifiedSeq": 5},
    }
    plain: store.Store[None] = store.Store()
    primed: store.Store[None] = store.Store(zdict=json.dumps(typical).encode())
    for name in ("r1", "r2", "정수기"):
        obj = json.loads(json.dumps(typical))
        obj["metadata"].update(name=name, resourceVersion="7")
        obj["spec"]["customer"]["id"] = f"customer-{name}"
        plain.observe(obj)
        primed.observe(obj)
        assert primed.get("shop", name) == obj == plain.get("shop", name)
    sizes = {
        label: sum(len(v[1]) for v in s._objects.values())
        for label, s in (("plain", plain), ("primed", primed))
    }
    assert sizes["primed"] < sizes["plain"] / 2, sizes
