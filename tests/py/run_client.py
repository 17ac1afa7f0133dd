"""Calls run_with_secrets once through the official MCP Python SDK and
prints the result's text and the tool's input schema as JSON.

usage: run_client.py AGENT_VAULT_MCP ARGS_JSON
"""
import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main() -> None:
    shim, args = sys.argv[1], json.loads(sys.argv[2])
    import os
    params = StdioServerParameters(command=shim, args=[], env=dict(os.environ))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            schema = next(t.input_schema for t in tools.tools if t.name == "run_with_secrets")
            result = await session.call_tool("run_with_secrets", args)
            text = [c.text for c in result.content if getattr(c, "type", "") == "text"]
            print(json.dumps({"error": result.is_error, "text": text, "schema": schema}))


asyncio.run(main())
