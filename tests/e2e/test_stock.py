"""Stock under contention: concurrent applications never oversell, and nobody is charged for nothing."""

from __future__ import annotations

import concurrent.futures
from typing import Any

from rental_devenv import testkit
from rental_gateway import testing

RESTING = {"Confirmed", "Rejected"}


def test_thirty_concurrent_rentals_for_ten_units(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    operator_factory(gateway)
    cluster.create(testkit.purifier("aqua", stock=10))
    names = [f"r{i:02d}" for i in range(30)]
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda n: cluster.create(testkit.rental(n, "aqua", customer=f"c-{n}")), names))

    def settled() -> dict[str, str | None] | None:
        phases = cluster.phases()
        return phases if len(phases) == 30 and set(phases.values()) <= RESTING else None

    phases = testkit.wait_for(settled, timeout=120, what="all 30 rentals Confirmed or Rejected")
    confirmed = sorted(n for n, p in phases.items() if p == "Confirmed")
    rejected = sorted(n for n, p in phases.items() if p == "Rejected")
    assert (len(confirmed), len(rejected)) == (10, 20)

    paid_for = {p["spec"]["rental"] for p in cluster.items("payments")}
    assert paid_for == set(confirmed)
    for name in rejected:
        rental = cluster.get("rentals", name)
        assert rental is not None
        reasons = {c["type"]: c["reason"] for c in rental["status"]["conditions"]}
        assert reasons["StockReserved"] == "OutOfStock", name
        assert name not in paid_for, f"{name} was out of stock but got a Payment"

    purifier = cluster.get("purifiers", "aqua")
    assert purifier is not None
    status = purifier["status"]
    assert cluster.holders("aqua") == confirmed
    assert (status["allocated"], status["available"]) == (10, 0)
    assert status["available"] + status["allocated"] == purifier["spec"]["stock"]

    charged = sorted(p["reference"].split("/")[1] for p in gateway.ledger()["payments"])
    assert charged == confirmed  # exactly one charge per confirmed rental, none for the rejected


def test_lowering_stock_below_allocated_is_reported_not_enforced(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    operator_factory(gateway)
    cluster.create(testkit.purifier("aqua", stock=2))
    for name in ("a", "b"):
        cluster.create(testkit.rental(name, "aqua"))
    testkit.wait_for(
        lambda: set(cluster.phases().values()) == {"Confirmed"}, timeout=60, what="both rentals Confirmed"
    )
    cluster.patch("purifiers", "aqua", {"spec": {"stock": 1}})

    def overcommitted() -> dict[str, Any] | None:
        purifier = cluster.get("purifiers", "aqua") or {}
        ready = {c["type"]: c for c in purifier.get("status", {}).get("conditions", [])}.get("Ready", {})
        return purifier if ready.get("reason") == "Overcommitted" else None

    purifier = testkit.wait_for(overcommitted, timeout=30, what="Ready=False/Overcommitted")
    assert purifier["status"]["allocated"] == 2
    assert purifier["status"]["available"] == 0
    assert set(cluster.phases().values()) == {"Confirmed"}  # nobody's rental was dropped


def test_the_journal_forgets_deleted_rentals_and_a_force_deleted_holder_gives_its_unit_back(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    """The Purifier journals changes in flight, not every rental ever served: entries of rentals that
    are gone are dropped by the next write, and a Reserve entry whose rental vanished without
    recording it (finalizer stripped by hand) gives the unit back."""
    operator = operator_factory(gateway)
    cluster.create(testkit.purifier("aqua", stock=2))
    cluster.create(testkit.rental("gone", "aqua", customer="c-gone"))
    testkit.wait_for(lambda: cluster.phase("rentals", "gone") == "Confirmed", timeout=60, what="confirmed")
    cluster.delete("rentals", "gone")
    testkit.wait_for(lambda: cluster.get("rentals", "gone") is None, timeout=60, what="compensated and gone")

    # A reservation counted while the operator is down, whose rental is then force-deleted: what a
    # crash between the two writes followed by `kubectl patch --type=merge -p '{"metadata":
    # {"finalizers":null}}'` and a delete leaves behind.
    operator.stop()
    purifier = cluster.get("purifiers", "aqua")
    assert purifier is not None
    pending = [c for c in purifier["status"].get("pending") or () if c["rental"] != "gone"]
    orphan = {"rental": "vanished", "uid": "0b7c6a1e-dead-4bee-8000-000000000000", "operation": "Reserve"}
    cluster.custom.patch_namespaced_custom_object_status(
        testkit.GROUP,
        testkit.VERSION,
        cluster.namespace,
        "purifiers",
        "aqua",
        {"status": {"pending": [*pending, orphan], "allocated": purifier["status"]["allocated"] + 1}},
        _content_type="application/merge-patch+json",
    )
    operator.start()
    cluster.create(testkit.rental("next", "aqua", customer="c-next"))
    testkit.wait_for(lambda: cluster.phase("rentals", "next") == "Confirmed", timeout=60, what="confirmed")

    def tidy() -> dict[str, Any] | None:
        status = (cluster.get("purifiers", "aqua") or {}).get("status") or {}
        names = {c["rental"] for c in status.get("pending") or ()}
        return status if not names & {"gone", "vanished"} else None

    status = testkit.wait_for(tidy, timeout=30, what="the journal rid of rentals that are gone")
    assert (status["allocated"], status["available"]) == (1, 1)
    assert cluster.holders("aqua") == ["next"]
