"""Drives agent-vault-mcp with the official MCP Python SDK (the `mcp`
package), as a Python-based agent would: initialize, list tools, call
list_secrets, a get_secret that waits for a human (with a progress token),
the same get again, and a call with arguments missing.

Usage: official_client.py <path to agent-vault-mcp>. The environment
(HOME, AGENT_VAULT_HOME, PATH) and working directory are passed to the shim.
Prints one JSON line when the get is waiting ("waiting"), then one JSON
line with everything it saw. Values are compared by the Rust test; this
script prints them only to its stdout, which that test reads.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters, stdio_client


def texts(result):
    return [c.text for c in result.content if getattr(c, "type", "") == "text"]


async def main(shim):
    env = {k: os.environ[k] for k in ("HOME", "AGENT_VAULT_HOME", "PATH")}
    params = StdioServerParameters(command=shim, env=env, cwd=os.getcwd())
    out = {}
    progress = []

    async def on_progress(step, total, message):
        progress.append(message)

    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            out["server"] = init.server_info.name
            tools = await session.list_tools()
            out["tools"] = sorted(t.name for t in tools.tools)
            # Several clients do not resolve $ref/$defs: every schema inline.
            out["schemas_with_refs"] = sorted(
                t.name for t in tools.tools if "$ref" in json.dumps(t.input_schema) or "$defs" in json.dumps(t.input_schema)
            )
            listed = await session.call_tool("list_secrets", {})
            out["list"] = {"error": bool(listed.is_error), "text": texts(listed)}
            print(json.dumps({"waiting": True}), flush=True)
            args = {"vault": "shared", "name": "API_KEY", "reason": "official SDK test"}
            got = await session.call_tool("get_secret", args, progress_callback=on_progress)
            out["get"] = {"error": bool(got.is_error), "text": texts(got)}
            again = await session.call_tool("get_secret", args)
            out["again"] = {"error": bool(again.is_error), "text": texts(again)}
            bad = await session.call_tool("get_secret", {"vault": "shared"})
            out["bad"] = {"error": bool(bad.is_error), "text": texts(bad)}
    out["progress"] = progress
    print(json.dumps(out), flush=True)


asyncio.run(main(sys.argv[1]))
