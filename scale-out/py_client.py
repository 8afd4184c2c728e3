#!/usr/bin/env python3
"""The official MCP Python SDK (pinned in interop/requirements.txt) in a legacy-era session through the round-robin
proxy of scale-out/run, in front of several conformance-server instances:

    py_client.py URL [INSTANCES]      (INSTANCES, default 3: below 2, requests cannot land on different ones)

  * initialize (a 2025-* version), tools/list, test_simple_text;
  * test_elicitation: the form request comes on the tools/call stream of one instance, and the SDK POSTs the answer,
    which the proxy sends to another instance; the tool must still get it;
  * test_reconnection (SEP-1699): the server closes the call's SSE stream; the SDK resumes with Last-Event-ID on a
    GET, which lands on another instance; the result must arrive there.

Every HTTP exchange is recorded with the `X-Keel-Upstream` header the proxy adds, so the checks also prove that the
requests did land on different instances. Prints `  ok: ...` per check; `py_client: FAILED: <why>` and exit 1 on the
first mismatch.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
import httpx2
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import Implementation

TIMEOUT = 30.0


class Mismatch(Exception):
    pass


def ok(text: str) -> None:
    print(f"  ok: {text}", flush=True)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Mismatch(message)


class Exchange:
    def __init__(self, method: str, rpc: str, last_event_id: str | None, status: int, upstream: str | None):
        self.method, self.rpc, self.last_event_id, self.status, self.upstream = (
            method, rpc, last_event_id, status, upstream)

    def __repr__(self) -> str:
        return f"{self.method} {self.rpc} -> upstream {self.upstream}: {self.status}"


exchanges: list[Exchange] = []


def rpc_of(request: httpx2.Request) -> str:
    """What a POST carried: the JSON-RPC method, or `response:<id>` for an answer to a server request."""
    try:
        body = json.loads(request.content or b"null")
    except (ValueError, httpx2.RequestNotRead):
        return "?"
    if isinstance(body, dict):
        if "method" in body:
            return str(body["method"]) + (f"#{body['id']}" if "id" in body else "")
        if "id" in body:
            return f"response:{body['id']}"
    return "?"


async def record(response: httpx2.Response) -> None:
    request = response.request
    rpc = rpc_of(request) if request.method == "POST" else ""
    exchanges.append(Exchange(request.method, rpc, request.headers.get("last-event-id"), response.status_code,
                              response.headers.get("x-keel-upstream")))


async def answer(_context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"username": "ada", "email": "ada@example.com"})


def texts(result: Any) -> list[str]:
    return [block.text for block in result.content if getattr(block, "type", None) == "text"]


async def call(session: ClientSession, name: str, arguments: dict[str, Any]) -> list[str]:
    try:
        result = await session.call_tool(name, arguments, read_timeout_seconds=TIMEOUT)
    except MCPError as exc:
        raise Mismatch(f"tools/call {name} got a JSON-RPC error: {exc.error.code} {exc.error.message!r}") from exc
    check(not result.is_error, f"tools/call {name} returned an error result: {texts(result)}")
    return texts(result)


def upstream_of(predicate) -> str | None:
    found = [e for e in exchanges if predicate(e)]
    return found[-1].upstream if found else None


async def run(url: str, instances: int) -> None:
    spread = instances >= 2
    client = httpx2.AsyncClient(timeout=httpx2.Timeout(TIMEOUT, read=TIMEOUT), event_hooks={"response": [record]})
    async with client, streamable_http_client(url, http_client=client) as (read, write):
        session = ClientSession(read, write, read_timeout_seconds=TIMEOUT, elicitation_callback=answer,
                                client_info=Implementation(name="keel-scale-out-python-client", version="1"))
        async with session:
            init = await session.initialize()
            check(init.protocol_version.startswith("2025-"), f"initialize agreed on {init.protocol_version!r}")
            ok(f"initialize -> {init.protocol_version}")

            listed = await session.list_tools()
            names = {tool.name for tool in listed.tools}
            for needed in ("test_simple_text", "test_elicitation", "test_reconnection"):
                check(needed in names, f"tools/list lacks {needed}")
            ok(f"tools/list: {len(names)} tools")

            got = await call(session, "test_simple_text", {})
            check(got == ["This is a simple text response for testing."], f"test_simple_text said {got}")
            ok("test_simple_text")

            before = len(exchanges)
            got = await call(session, "test_elicitation", {"message": "Who are you?"})
            check(any("ada@example.com" in text for text in got), f"test_elicitation said {got}")
            recent = exchanges[before:]
            tool_on = next((e.upstream for e in recent if e.rpc.startswith("tools/call")), None)
            answer_on = next((e.upstream for e in recent if e.rpc.startswith("response:")), None)
            check(tool_on is not None and answer_on is not None, f"exchanges: {recent}")
            check(tool_on != answer_on or not spread,
                  f"the elicitation answer landed on the tool's own instance ({tool_on}): {recent}")
            ok(f"test_elicitation: asked on instance {tool_on}, answered on instance {answer_on}")

            before = len(exchanges)
            got = await call(session, "test_reconnection", {})
            check(got == ["Reconnection test completed"], f"test_reconnection said {got}")
            recent = exchanges[before:]
            tool_on = next((e.upstream for e in recent if e.rpc.startswith("tools/call")), None)
            resumed = [e for e in recent if e.method == "GET" and e.last_event_id]
            check(bool(resumed), f"the SDK never resumed with Last-Event-ID: {recent}")
            check(resumed[-1].status == 200, f"the resumption got {resumed[-1].status}: {recent}")
            check(resumed[-1].upstream != tool_on or not spread,
                  f"the resumption landed on the tool's own instance: {recent}")
            ok(f"test_reconnection: called on instance {tool_on}, resumed on instance {resumed[-1].upstream}")

            got = await call(session, "test_simple_text", {})
            check(got == ["This is a simple text response for testing."], f"test_simple_text (again) said {got}")
            used = sorted({e.upstream for e in exchanges if e.upstream is not None})
            ok(f"the session used instances {', '.join(used)}")


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2) or (len(argv) == 2 and not argv[1].isdigit()):
        print("usage: py_client.py URL [INSTANCES]", file=sys.stderr)
        return 2

    async def bounded() -> None:
        with anyio.fail_after(120):
            await run(argv[0], int(argv[1]) if len(argv) == 2 else 3)

    try:
        anyio.run(bounded)
    except Mismatch as err:
        print(f"py_client: FAILED: {err}", flush=True)
        return 1
    except BaseException as err:  # noqa: BLE001 - an SDK exception group says more than a traceback here
        leaves = [err]
        while any(isinstance(e, BaseExceptionGroup) for e in leaves):  # the SDK's task groups wrap the real error
            leaves = [leaf for e in leaves for leaf in (e.exceptions if isinstance(e, BaseExceptionGroup) else [e])]
        why = "; ".join(f"{type(e).__name__}: {e}" for e in leaves)
        print(f"py_client: FAILED: {why}", flush=True)
        for exchange in exchanges[-12:]:
            print(f"    {exchange}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
