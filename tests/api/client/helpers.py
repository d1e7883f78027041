"""GraphQL documents and factories of the client (CRM) tests: clients, follow-ups, teams, audit."""

from __future__ import annotations

from datetime import datetime

from tests.conftest import gql

FIELDS = """
  id name phone idNumber stage lostReason ownerId duplicateOf version lastContactAt
  nextFollowUpAt
"""


CREATE = """
mutation($input: CreateClientInput!) {
  createClient(input: $input) {
    __typename
    ... on ClientPayload { duplicates client { id name stage ownerId duplicateOf version } }
    ... on UserError { code message field }
  }
}
"""


FOLLOW_UP_PAYLOAD = f"""
    __typename
    ... on FollowUpPayload {{
      followUp {{ id clientId kind outcome nextStep happenedAt dueAt doneAt assigneeId }}
      client {{ {FIELDS} }}
    }}
    ... on UserError {{ code message field }}
"""


SCHEDULE = f"""
mutation($c: ID!, $due: DateTime!, $note: String! = "") {{
  scheduleFollowUp(clientId: $c, dueAt: $due, note: $note) {{ {FOLLOW_UP_PAYLOAD} }}
}}
"""


DAY = """
{ myDay { today { id clientId assigneeId } overdue { id clientId assigneeId }
          stageCounts { stage count } } }
"""


TEAM = """
mutation($input: CreateTeamInput!) {
  createTeam(input: $input) { __typename ... on TeamPayload { team { id } } }
}
"""


ADD_TO_TEAM = """
mutation($t: ID!, $a: ID!) { addTeamMember(teamId: $t, accountId: $a) { __typename } }
"""


AUDIT = """
query($filter: AuditFilter) {
  auditLog(filter: $filter) { action actorId targetType targetId outcome details }
}
"""


def iso(dt: datetime) -> str:
    return dt.isoformat()


def payload(res: dict, field: str, typename: str) -> dict:
    assert "errors" not in res, res
    got = res["data"][field]
    assert got["__typename"] == typename, res
    return got


async def create(client, slug, token, expect="ClientPayload", **fields) -> dict:
    fields.setdefault("name", "Client")
    res = await gql(client, CREATE, {"input": fields}, tenant=slug, token=token)
    return payload(res, "createClient", expect)


async def new_client(client, slug, token, name="Client", **fields) -> str:
    return (await create(client, slug, token, name=name, **fields))["client"]["id"]


async def schedule(client, slug, token, client_id, due: datetime | str, note="") -> dict:
    due = due if isinstance(due, str) else iso(due)
    res = await gql(
        client, SCHEDULE, {"c": client_id, "due": due, "note": note}, tenant=slug, token=token
    )
    assert "errors" not in res, res
    return res["data"]["scheduleFollowUp"]


async def my_day(client, slug, token) -> dict:
    res = await gql(client, DAY, tenant=slug, token=token)
    assert "errors" not in res, res
    day = res["data"]["myDay"]
    day["counts"] = {s["stage"]: s["count"] for s in day["stageCounts"]}
    return day


async def audit(client, slug, **flt) -> list[dict]:
    res = await gql(client, AUDIT, {"filter": flt}, tenant=slug)
    assert "errors" not in res, res
    return res["data"]["auditLog"]


async def team(client, slug, name, kind, parent=None) -> str:
    res = await gql(
        client, TEAM, {"input": {"name": name, "kind": kind, "parentId": parent}}, tenant=slug
    )
    return payload(res, "createTeam", "TeamPayload")["team"]["id"]


async def join(client, slug, team_id, account_id) -> None:
    res = await gql(client, ADD_TO_TEAM, {"t": team_id, "a": str(account_id)}, tenant=slug)
    payload(res, "addTeamMember", "TeamMembershipPayload")


CREATE_WITH_PHONE = """
mutation($input: CreateClientInput!) {
  createClient(input: $input) {
    __typename
    ... on ClientPayload { duplicates client { id name phone stage ownerId duplicateOf version } }
    ... on UserError { code message field }
  }
}
"""

# Schedule a showing (the id, or the UserError).
SHOWING = """
mutation($input: ScheduleShowingInput!) {
  scheduleShowing(input: $input) {
    __typename ... on ShowingPayload { showing { id } } ... on UserError { code message field }
  }
}
"""
