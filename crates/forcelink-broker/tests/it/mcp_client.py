"""Drives forcelink's MCP server with the official MCP Python SDK (`mcp` on PyPI), as an agent's
client would: streamable HTTP, the API key as a bearer header. Run by tests/it/mcp.rs with a JSON
file naming the broker URLs and keys; prints every tool result's text as JSON on stdout (the Rust
side looks for secrets in them and checks the audit log) and exits non-zero on the first
expectation that fails.
"""

import asyncio
import base64
import json
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

CONFIG = json.load(open(sys.argv[1]))
TEXTS = []
TOOLS = [
    "list_connections", "soql_query", "sosl_search", "list_sobjects", "describe_sobject", "get_record",
    "create_record", "update_record", "delete_record", "limits", "create_user", "update_user",
    "activate_user", "deactivate_user", "freeze_user", "unfreeze_user", "remove_user_entitlements",
    "reset_password", "upload_document",
]
READS = {"list_connections", "soql_query", "sosl_search", "list_sobjects", "describe_sobject", "get_record", "limits"}


def check(ok, what):
    if not ok:
        raise AssertionError(what)


def leaves(e):
    """The exceptions inside (nested) exception groups."""
    if isinstance(e, BaseExceptionGroup):
        return [x for inner in e.exceptions for x in leaves(inner)]
    return [e]


def client(url, key, mode="legacy"):
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60)
    return Client(streamable_http_client(url, http_client=http), mode=mode)


async def call(c, tool, args, ok=True):
    r = await c.call_tool(tool, args)
    text = "".join(getattr(b, "text", "") for b in r.content)
    TEXTS.append({"tool": tool, "text": text, "structured": r.structured_content})
    check(bool(r.is_error) != ok, f"{tool}: expected {'success' if ok else 'an error'}, got {text}")
    return r.structured_content if ok else text


async def every_tool(url, key, connection, user):
    async with client(url, key) as c:
        # initialize (the legacy handshake): who the server is and what it offers.
        info = c.session.server_info if hasattr(c.session, "server_info") else None
        if info is not None:
            check(info.name == "forcelink", f"server name {info.name}")
        tools = (await c.list_tools()).tools
        names = [t.name for t in tools]
        check(names == TOOLS, f"tools {names}")
        for t in tools:
            check(t.input_schema["type"] == "object", f"{t.name} schema")
            check(t.annotations.read_only_hint == (t.name in READS), f"{t.name} readOnlyHint")
        by_name = {t.name: t for t in tools}
        check(by_name["delete_record"].annotations.destructive_hint is True, "delete is destructive")
        check(by_name["create_record"].annotations.destructive_hint is False, "create is not destructive")
        check(set(by_name["soql_query"].input_schema["required"]) == {"connection", "query"}, "soql_query required")

        conns = await call(c, "list_connections", {})
        check([x["name"] for x in conns["connections"]] == [connection], f"connections {conns}")

        first = await call(c, "soql_query", {"connection": connection, "query": "SELECT Id, Name FROM Account ORDER BY Name", "max_rows": 2})
        check(first["returned"] == 2 and first["next"] and not first["done"], f"first page {first}")
        second = await call(c, "soql_query", {"connection": connection, "query": "SELECT Id, Name FROM Account ORDER BY Name", "max_rows": 2, "next": first["next"]})
        check(second["returned"] == 2, f"second page {second}")
        seen = {r["Id"] for r in first["records"]}
        check(not seen & {r["Id"] for r in second["records"]}, "the continuation returns other records")

        # Pages as long as max_rows: the continuation follows Salesforce's query locator.
        big = await call(c, "soql_query", {"connection": connection, "query": "SELECT Id FROM Account", "max_rows": 200})
        check(big["returned"] == 200 and big["totalSize"] >= 400, f"a page of 200 of {big['totalSize']}")
        cursor = json.loads(base64.urlsafe_b64decode(big["next"] + "=" * (-len(big["next"]) % 4)))
        check(cursor["l"].startswith("/services/data/") and cursor["s"] == 0, f"a locator cursor {cursor}")
        more = await call(c, "soql_query", {"connection": connection, "query": "SELECT Id FROM Account", "max_rows": 200, "next": big["next"]})
        check(more["returned"] == 200, f"the next page {more['returned']}")
        check(not {r["Id"] for r in big["records"]} & {r["Id"] for r in more["records"]}, "the locator's page is the next one")

        sobjects = await call(c, "list_sobjects", {"connection": connection})
        check(any(o["name"] == "Account" for o in sobjects["sobjects"]), "Account listed")
        described = await call(c, "describe_sobject", {"connection": connection, "sobject": "Account"})
        check(any(f["name"] == "Name" for f in described["fields"]), "Account.Name described")

        created = await call(c, "create_record", {"connection": connection, "sobject": "Account", "fields": {"Name": "Zanzibar MCP Traders"}})
        account = created["id"]
        got = await call(c, "get_record", {"connection": connection, "sobject": "Account", "id": account, "fields": ["Name"]})
        check(got["record"]["Name"] == "Zanzibar MCP Traders", f"get_record {got}")
        await call(c, "update_record", {"connection": connection, "sobject": "Account", "id": account, "fields": {"Name": "Zanzibar MCP Traders Ltd"}})
        found = await call(c, "sosl_search", {"connection": connection, "search": "FIND {Zanzibar} RETURNING Account(Id, Name)"})
        check([r["Name"] for r in found["records"]] == ["Zanzibar MCP Traders Ltd"], f"sosl {found}")
        doc = await call(c, "upload_document", {
            "connection": connection, "title": "Agent notes", "file_name": "notes.txt",
            "content_base64": base64.b64encode(b"hello from an agent").decode(), "link_to": account,
        })
        check(doc["content_version_id"].startswith("068"), f"upload {doc}")
        await call(c, "delete_record", {"connection": connection, "sobject": "Account", "id": account})
        limits = await call(c, "limits", {"connection": connection})
        check("DailyApiRequests" in limits["limits"], "limits")

        made = await call(c, "create_user", {
            "connection": connection, "username": "agent.hire@playground.forcelink.dev", "last_name": "Hire",
            "email": "agent.hire@example.com", "profile_name": "Standard User",
        })
        check(made["user_id"].startswith("005"), f"create_user {made}")
        await call(c, "update_user", {"connection": connection, "user": made["user_id"], "fields": {"Title": "Agent"}})
        off = await call(c, "deactivate_user", {"connection": connection, "user": user})
        check(off["is_active"] is False, f"deactivate {off}")
        on = await call(c, "activate_user", {"connection": connection, "user": user})
        check(on["is_active"] is True, f"activate {on}")
        frozen = await call(c, "freeze_user", {"connection": connection, "user": user})
        check(frozen["is_frozen"] is True, f"freeze {frozen}")
        thawed = await call(c, "unfreeze_user", {"connection": connection, "user": user})
        check(thawed["is_frozen"] is False, f"unfreeze {thawed}")
        removed = await call(c, "remove_user_entitlements", {"connection": connection, "user": made["user_id"]})
        check(removed["user_id"] == made["user_id"], f"remove entitlements {removed}")
        reset = await call(c, "reset_password", {"connection": connection, "user": made["user_id"]})
        check(reset["generated_password"] == "[redacted]", f"a generated password is never shown: {reset}")

        # Arguments are checked before Salesforce is asked.
        bad = await call(c, "get_record", {"connection": connection, "sobject": "Account", "id": "nope"}, ok=False)
        check("id" in bad, bad)

        # Resources and prompts.
        resources = (await c.list_resources()).resources
        check([str(r.uri) for r in resources] == [f"forcelink://{connection}/sobjects"], f"resources {resources}")
        templates = (await c.list_resource_templates()).resource_templates
        check(templates[0].uri_template == "forcelink://{connection}/sobjects/{sobject}", "template")
        read = await c.read_resource(f"forcelink://{connection}/sobjects/Contact")
        body = json.loads(read.contents[0].text)
        check(body["name"] == "Contact", "the describe resource")
        TEXTS.append({"tool": "resource", "text": read.contents[0].text, "structured": None})
        prompts = [p.name for p in (await c.list_prompts()).prompts]
        check(prompts == ["explore_sobject", "find_records"], f"prompts {prompts}")
        prompt = await c.get_prompt("find_records", {"connection": connection, "sobject": "Contact", "field": "LastName", "value": "O'Brien"})
        check("LastName = 'O\\'Brien'" in prompt.messages[0].content.text, "the prompt's value is escaped")


async def modern(url, key, connection):
    # The stateless 2026-07-28 protocol (server/discover instead of initialize) works too.
    async with client(url, key, mode="auto") as c:
        r = await call(c, "list_connections", {})
        check(r["connections"][0]["name"] == connection, "modern list_connections")


async def refusals(cfg):
    url, connection = cfg["url"], cfg["connection"]
    # A key without the mcp scope cannot even connect.
    try:
        async with client(url, cfg["keys"]["no_mcp"]) as c:
            await c.list_tools()
        raise AssertionError("a key without mcp connected")
    except AssertionError:
        raise
    except BaseException as e:  # the SDK reports the HTTP 403 as an error response inside exception groups
        check(any(isinstance(x, MCPError) for x in leaves(e)), f"no-mcp refusal: {e!r}")
    # A key for another connection gets no data from this one.
    async with client(url, cfg["keys"]["other"]) as c:
        text = await call(c, "soql_query", {"connection": connection, "query": "SELECT Id FROM Account"}, ok=False)
        check("may not use" in text, text)
        check((await call(c, "list_connections", {}))["connections"] == [], "other sees no connection")
    # A read-only key reads, is not offered writes, and is refused them.
    async with client(url, cfg["keys"]["reader"]) as c:
        names = {t.name for t in (await c.list_tools()).tools}
        check(names == READS, f"read-only tools {names}")
        await call(c, "limits", {"connection": connection})
        text = await call(c, "create_record", {"connection": connection, "sobject": "Account", "fields": {"Name": "x"}}, ok=False)
        check("read-only" in text, text)
    # Over the budget (3 a minute on this broker): the fourth call is refused.
    async with client(cfg["rate_url"], cfg["keys"]["agent"]) as c:
        for _ in range(3):
            await call(c, "list_connections", {})
        text = await call(c, "list_connections", {}, ok=False)
        check("rate limited" in text, text)


async def main():
    cfg = CONFIG
    await every_tool(cfg["url"], cfg["keys"]["agent"], cfg["connection"], cfg["user"])
    await modern(cfg["url"], cfg["keys"]["agent"], cfg["connection"])
    await refusals(cfg)
    print(json.dumps(TEXTS))


asyncio.run(main())
