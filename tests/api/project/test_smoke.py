from tests.conftest import gql


async def test_create_and_read_project(client, make_tenant):
    tenant = await make_tenant()
    res = await gql(
        client,
        'mutation { createProject(input: {name: "Harbour One", district: "Nanshan"}) '
        "{ __typename ... on ProjectPayload { project { id name } } } }",
        tenant=tenant.slug,
    )
    project = res["data"]["createProject"]["project"]
    res = await gql(client, "{ projects { id name district } }", tenant=tenant.slug)
    assert res["data"]["projects"] == [
        {"id": project["id"], "name": "Harbour One", "district": "Nanshan"}
    ]
