"""Showings: the agent's overlapping showings are refused (also when requested at once),
feedback per unit shown, and the private calendar feed (parsed back by icalendar) is revocable."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from icalendar import Calendar

from tests.api.client.helpers import CREATE_WITH_PHONE
from tests.api.unit.helpers import inventory
from tests.conftest import gql

SCHEDULE = """
mutation($input: ScheduleShowingInput!) {
  scheduleShowing(input: $input) {
    __typename ... on ShowingPayload { showing { id status unitIds } }
    ... on UserError { code message field }
  }
}
"""
FEEDBACK = """
mutation($s: ID!, $items: [ShowingFeedbackInput!]!) {
  showingFeedback(showingId: $s, items: $items) {
    __typename ... on ShowingPayload { showing { status feedback { id rating comment } } }
    ... on UserError { code message field }
  }
}
"""


def at(hours: float) -> str:
    return (
        datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=hours)
    ).isoformat()


async def test_showings_conflicts_feedback_and_calendar(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    _, agent = await member(tenant, ["agent"])
    inv = await inventory(client, slug, floors=1, per_floor=2)
    units = [u["id"] for u in inv["units"]]
    res = await gql(
        client,
        CREATE_WITH_PHONE,
        {"input": {"name": "孙女士", "phone": "13512340000"}},
        tenant=slug,
        token=agent,
    )
    cid = res["data"]["createClient"]["client"]["id"]

    def showing(start: float, end: float) -> dict:
        return {
            "input": {
                "clientId": cid,
                "startsAt": at(start),
                "endsAt": at(end),
                "unitIds": units,
                "place": "售楼处",
            }
        }

    # Two overlapping requests at once: exactly one is scheduled.
    both = await asyncio.gather(
        *(gql(client, SCHEDULE, showing(24, 25), tenant=slug, token=agent) for _ in range(2))
    )
    kinds = sorted(r["data"]["scheduleShowing"]["__typename"] for r in both)
    assert kinds == ["ConflictError", "ShowingPayload"], both
    first = next(
        r["data"]["scheduleShowing"]["showing"]
        for r in both
        if r["data"]["scheduleShowing"]["__typename"] == "ShowingPayload"
    )
    later = await gql(client, SCHEDULE, showing(25, 26), tenant=slug, token=agent)  # touching
    assert later["data"]["scheduleShowing"]["__typename"] == "ShowingPayload", later
    stage = await gql(
        client, "query($c: ID!) { client(id: $c) { stage } }", {"c": cid}, tenant=slug, token=agent
    )
    assert stage["data"]["client"]["stage"] == "SHOWING"

    items = [
        {"kind": "UNIT", "id": units[0], "rating": 5, "comment": "南向 采光好"},
        {"kind": "UNIT", "id": units[1], "rating": 2},
    ]
    res = await gql(client, FEEDBACK, {"s": first["id"], "items": items}, tenant=slug, token=agent)
    done = res["data"]["showingFeedback"]["showing"]
    assert done["status"] == "done" and [f["rating"] for f in done["feedback"]] == [5, 2]
    bad = [{"kind": "LISTING", "id": units[0], "rating": 3}]
    res = await gql(client, FEEDBACK, {"s": first["id"], "items": bad}, tenant=slug, token=agent)
    assert res["data"]["showingFeedback"]["field"] == "items", res

    feed = await gql(client, "mutation { createCalendarFeed { url } }", tenant=slug, token=agent)
    url = feed["data"]["createCalendarFeed"]["url"]
    assert url.startswith("http://") and url.endswith(".ics")
    path = url[url.index("/calendar/") :]
    resp = await client.get(path)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/calendar")
    cal = Calendar.from_ical(resp.content)
    events = [c for c in cal.walk("VEVENT")]
    assert len(events) == 1  # the done showing is off the calendar, the later one is on it
    assert "孙女士" in str(events[0]["SUMMARY"]) and str(events[0]["LOCATION"]) == "售楼处"
    again = await gql(client, "mutation { createCalendarFeed { url } }", tenant=slug, token=agent)
    assert (await client.get(path)).status_code == 404  # the old URL ended
    new_path = again["data"]["createCalendarFeed"]["url"]
    new_path = new_path[new_path.index("/calendar/") :]
    assert (await client.get(new_path)).status_code == 200
    revoked = await gql(client, "mutation { revokeCalendarFeed }", tenant=slug, token=agent)
    assert revoked["data"]["revokeCalendarFeed"] is True
    assert (await client.get(new_path)).status_code == 404
