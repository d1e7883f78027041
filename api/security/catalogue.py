"""The permission catalogue and the built-in roles, defined in code.

``docs/permissions.md`` is generated from this module (``anju permissions doc``); a test fails
when it is stale. Domains add their permissions here as they arrive."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

PERMISSIONS: dict[str, str] = {
    # inventory
    "project.read": "Read projects and buildings",
    "project.write": "Create and change projects and buildings",
    "unit.read": "Read units, unit types and their status",
    "unit.history": "Read a unit's timeline and price history",
    "unit.write": "Create units and unit types; change a unit's status; release anyone's hold",
    "unit.hold": "Hold and reserve units (an agent's own holds)",
    "unit.price.adjust": "Adjust unit prices by rule (large decreases wait for approval)",
    "unit.price.approve": "Approve or reject price adjustments waiting for approval",
    "listing.read": "Read resale listings",
    "listing.seller": "See who sells a listing (name; phone masked unless pii.read)",
    "listing.write": "Create resale listings and change one's own",
    "listing.manage": "Change any resale listing",
    "listing.verify": "Mark resale listings as verified",
    "media.write": "Upload and remove media of what you may change (inventory, own listings)",
    "follow": "Follow units, listings and saved searches (one's own follows)",
    # clients
    "client.read": "Read client records (within the data scope)",
    "client.write": "Create and change client records (within the data scope)",
    "lead.route": "Configure lead routing rules; pause agents, route and assign clients (within "
    "the data scope)",
    "activity.track": "Record what one views and searches in the app (builds one's client "
    "profile for one's agent)",
    # sales
    "sales.pledge.read": "Read pledges (认筹) of clients within the data scope",
    "sales.pledge.write": "Register pledges for clients within the data scope, take their fees "
    "and withdraw them (a paid fee is refunded by the company's rule)",
    "sales.pledge.summary": "Read a project's pledge counts: genuine, padded, withdrawn (every "
    "client's)",
    "sales.subscription.read": "Read subscriptions (认购) of clients within the data scope and "
    "their agreements (PDF)",
    "sales.subscription.write": "Subscribe reserved units for clients within the data scope, "
    "change their unit, withdraw them and ask for more days to sign",
    "sales.subscription.approve_discount": "Approve or reject subscription discounts above the "
    "company's limit (not one's own)",
    "sales.subscription.extend": "Approve or reject more days to sign a subscription's contract "
    "(not one's own request)",
    "sales.contract.read": "Read sale contracts (签约) of clients within the data scope, their "
    "documents, signed copies and completion certificates",
    "sales.contract.write": "Draw contracts from active subscriptions, amend them, and have the "
    "buyer sign (send the buyer's SMS code, sign with it)",
    "sales.contract.register": "Record a signed contract's registration with the housing "
    "authority (网签备案)",
    "sales.contract.cancel": "Cancel contracts with a reason (a signed one puts the unit back on "
    "sale)",
    "sales.contract.template": "Create and change the company's contract templates",
    "sales.plan.read": "Read the payment plans, schedules (paid and outstanding per line), "
    "collections (回款) and mortgage cases of contracts of clients within the data scope",
    "sales.plan.write": "Set the payment plan of a draft contract (full, instalments, "
    "mortgages, a combination)",
    "sales.collection.write": "Take a payment on a contract in force through Stripe (the buyer "
    "pays in the app)",
    "sales.collection.record": "Record money received on contracts: bank transfers with proof, "
    "mortgage disbursements",
    "sales.mortgage.write": "Open mortgage cases, tick their documents, submit, approve or "
    "refuse them",
    "sales.calendar": "Declare the company's extra days off and working days (over the "
    "official calendar)",
    "sales.purchase.own": "Read one's own purchases: the payment plan, what is due, what was "
    "paid and the mortgage's stage",
    "sales.channel.manage": "Create and change sales channels (agencies, brokers) and commission "
    "rules per project and channel",
    "sales.commission.read": "Read every commission, commission rule and channel",
    "sales.commission.mine": "Read one's own commissions (as an agent, or as a channel's broker)",
    "sales.commission.approve": "Approve or reject payable commissions (not those one earns a "
    "part of)",
    "sales.commission.pay": "Record approved commissions as paid out (posted to the ledger)",
    "sales.attribution.register": "Register clients for a channel (报备), read one's "
    "registrations and their visit codes",
    "sales.attribution.visit": "Confirm a client's visit by entering or scanning its visit code",
    "sales.attribution.resolve": "Read every registration and decide attribution disputes "
    "between channels",
    # people and access
    "member.read": "List the tenant's members and their roles",
    "member.invite": "Invite staff and disable members",
    "role.manage": "Create, change and delete custom roles; assign roles",
    "team.manage": "Create and change offices and teams",
    "audit.read": "Read the audit log",
    "pii.read": "See personal data unmasked (phone and ID numbers); every such read is audited",
    "tenant.manage": "Read and change the tenant's settings",
    "graphql.adhoc": "Send full GraphQL documents in production (web consoles, tools); apps "
    "send trusted document ids",
    # property management
    "notice.publish": "Publish notices to the tenant's members (pushed and in their inbox)",
    # money
    "payment.read": "Read payments and bills",
    "payment.refund": "Refund payments",
    "bill.manage": "Issue and void fee bills; read every bill and its receipts",
    "bill.pay": "Read and pay one's own bills; download their receipts",
}

# Data scopes for records that belong to people: own < team < all.
SCOPES = ("own", "team", "all")

_STAFF_READ = {"project.read", "unit.read", "unit.history", "listing.read", "follow"}

BUILTIN_ROLES: dict[str, dict[str, Any]] = {
    "admin": {
        "name": "Administrator",
        "permissions": frozenset(PERMISSIONS),
        "scope": "all",
    },
    "manager": {
        "name": "Sales manager",
        "permissions": frozenset(
            _STAFF_READ
            | {
                "project.write",
                "unit.write",
                "unit.hold",
                "unit.price.adjust",
                "unit.price.approve",
                "listing.seller",
                "listing.write",
                "listing.manage",
                "listing.verify",
                "media.write",
                "client.read",
                "client.write",
                "lead.route",
                "member.read",
                "audit.read",
                "payment.read",
                "graphql.adhoc",
                "notice.publish",
                "sales.pledge.read",
                "sales.pledge.write",
                "sales.pledge.summary",
                "sales.subscription.read",
                "sales.subscription.write",
                "sales.subscription.approve_discount",
                "sales.subscription.extend",
                "sales.contract.read",
                "sales.contract.write",
                "sales.contract.register",
                "sales.contract.cancel",
                "sales.plan.read",
                "sales.plan.write",
                "sales.collection.write",
                "sales.collection.record",
                "sales.mortgage.write",
                "sales.calendar",
                "sales.channel.manage",
                "sales.commission.read",
                "sales.commission.mine",
                "sales.commission.approve",
                "sales.attribution.register",
                "sales.attribution.visit",
                "sales.attribution.resolve",
            }
        ),
        "scope": "team",
    },
    "agent": {
        "name": "Agent",
        "permissions": frozenset(
            _STAFF_READ
            | {
                "unit.hold",
                "listing.seller",
                "listing.write",
                "media.write",
                "client.read",
                "client.write",
                "sales.pledge.read",
                "sales.pledge.write",
                "sales.subscription.read",
                "sales.subscription.write",
                "sales.contract.read",
                "sales.contract.write",
                "sales.plan.read",
                "sales.plan.write",
                "sales.collection.write",
                "sales.mortgage.write",
                "sales.commission.mine",
                "sales.attribution.register",
                "sales.attribution.visit",
            }
        ),
        "scope": "own",
    },
    "finance": {
        "name": "Finance",
        "permissions": frozenset(
            _STAFF_READ
            | {
                "payment.read",
                "payment.refund",
                "pii.read",
                "graphql.adhoc",
                "bill.manage",
                "sales.subscription.read",
                "sales.contract.read",
                "sales.plan.read",
                "sales.collection.write",
                "sales.collection.record",
                "sales.mortgage.write",
                "sales.commission.read",
                "sales.commission.pay",
            }
        ),
        "scope": "all",
    },
    "property_staff": {
        "name": "Property staff",
        "permissions": frozenset(_STAFF_READ | {"notice.publish", "bill.manage"}),
        "scope": "own",
    },
    "owner": {
        "name": "Owner",
        "permissions": frozenset(
            {
                "project.read",
                "unit.read",
                "listing.read",
                "follow",
                "bill.pay",
                "activity.track",
                "sales.purchase.own",
            }
        ),
        "scope": "own",
    },
    "client": {
        "name": "Client",
        "permissions": frozenset(
            {
                "project.read",
                "unit.read",
                "listing.read",
                "follow",
                "bill.pay",
                "activity.track",
                "sales.purchase.own",
            }
        ),
        "scope": "own",
    },
}


def unknown_permissions(perms: Iterable[str]) -> list[str]:
    return sorted(p for p in perms if p not in PERMISSIONS)


def markdown_table() -> str:
    roles = list(BUILTIN_ROLES)
    lines = [
        "# Permissions",
        "",
        "Generated from `api/security/catalogue.py` by `anju permissions doc`; do not edit.",
        "",
        "| permission | meaning | " + " | ".join(roles) + " |",
        "|---|---|" + "---|" * len(roles),
    ]
    for key, text in PERMISSIONS.items():
        marks = " | ".join("x" if key in BUILTIN_ROLES[r]["permissions"] else "" for r in roles)
        lines.append(f"| `{key}` | {text} | {marks} |")
    lines += ["", "Data scope of each built-in role (records that belong to people):", ""]
    lines += [f"- `{r}`: {BUILTIN_ROLES[r]['scope']}" for r in roles]
    return "\n".join(lines) + "\n"
