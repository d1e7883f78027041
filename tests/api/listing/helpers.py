"""GraphQL documents and factories of the listing tests."""

from __future__ import annotations

from tests.conftest import gql

FIELDS = """
  id community city district address latitude longitude grossArea rooms livingRooms bathrooms
  floor totalFloors orientation yearBuilt decoration propertyRight rightYears titleRegisteredOn
  titleOverFiveYears mortgaged onlyHome agentId askingPrice { minorUnits currency }
  pricePerM2 { minorUnits currency } status standardStatus verified verifiedAt description tags
  listedAt expiresAt version
"""


RESULT = (
    "{ __typename ... on ListingPayload { listing {" + FIELDS + "} }"
    " ... on UserError { code message field } }"
)


CREATE = "mutation($input: CreateListingInput!) { createListing(input: $input) " + RESULT + " }"


def minimal(**over) -> dict:
    return {
        "community": "Lotus Garden",
        "grossArea": "89.50",
        "rooms": 3,
        "askingPrice": 500_000_000,
        **over,
    }


async def create(client, slug: str, token=None, doc: str = CREATE, **fields) -> dict:
    """createListing's result (a payload or a typed error)."""
    kw = {} if token is None else {"token": token}
    res = await gql(client, doc, {"input": fields}, tenant=slug, **kw)
    assert "errors" not in res, res
    return res["data"]["createListing"]


async def created(client, slug: str, token=None, **fields) -> dict:
    payload = await create(client, slug, token, **fields)
    assert payload["__typename"] == "ListingPayload", payload
    return payload["listing"]
