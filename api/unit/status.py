"""The unit status machine and its RESO StandardStatus mapping.

Local statuses are finer than RESO's; the API shows both. A transition not listed here is
refused. ``on_hold`` carries an expiry: an expired hold counts as ``available`` for anyone who
wants the unit, and the hold-release job writes it back to ``available``."""

from __future__ import annotations

TRANSITIONS: dict[str, frozenset[str]] = {
    "planned": frozenset({"available"}),
    "available": frozenset({"on_hold", "reserved", "planned"}),
    "on_hold": frozenset({"available", "reserved"}),
    "reserved": frozenset({"subscribed", "available"}),
    "subscribed": frozenset({"contracted", "available"}),
    "contracted": frozenset({"sold", "available"}),
    "sold": frozenset({"delivered"}),
    "delivered": frozenset(),
}

# Going back to available from a deal in progress cancels the deal: a reason is required.
NEEDS_REASON = frozenset(
    {("reserved", "available"), ("subscribed", "available"), ("contracted", "available")}
)

# RESO Data Dictionary StandardStatus, shown at the API edge.
RESO: dict[str, str] = {
    "planned": "Coming Soon",
    "available": "Active",
    "on_hold": "Hold",
    "reserved": "Active Under Contract",
    "subscribed": "Active Under Contract",
    "contracted": "Pending",
    "sold": "Closed",
    "delivered": "Closed",
}

# Statuses in which a unit is still on the market (price changes allowed, can be held).
MARKETABLE = frozenset({"planned", "available", "on_hold"})


def allowed(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, frozenset())
