"""The benchmark's Python client: the official MCP SDK (`mcp`) driving one
stdio MCP server, as a Python-based agent does.

Usage: bench_client.py <server> <calls> [<approvals>]

- Initializes, lists the tools (as an agent does), makes 200 warm-up calls of `get_secret` (vault "open",
  whose window is open, name API_KEY), then <calls> more, each timed
  alone; prints one JSON line {"latencies_ns": [...]}.
- Then, <approvals> times: calls `get_secret` for OTHER in vault "dev"
  (no window), which waits for a person; prints {"waiting": true}, and
  when the value arrives prints {"value_at_ns": <CLOCK_MONOTONIC ns>,
  "ok": <the value was right>}, so that the bench can take the time from
  its approve POST to the value here.

The environment (HOME, AGENT_VAULT_HOME, PATH) and working directory are
passed to the server. Values are never printed.
"""

import asyncio
import json
import os
import sys
import time

from mcp import ClientSession, StdioServerParameters, stdio_client

ARGS = {"vault": "open", "name": "API_KEY", "reason": "benchmark"}


async def main(server, calls, approvals):
    env = {k: os.environ[k] for k in ("HOME", "AGENT_VAULT_HOME", "PATH") if k in os.environ}
    params = StdioServerParameters(command=server, env=env, cwd=os.getcwd())
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await session.list_tools()
            for _ in range(200):
                r = await session.call_tool("get_secret", ARGS)
                if r.is_error:
                    raise SystemExit("warm-up call failed")
            latencies = []
            for _ in range(calls):
                t = time.monotonic_ns()
                r = await session.call_tool("get_secret", ARGS)
                latencies.append(time.monotonic_ns() - t)
                if r.is_error:
                    raise SystemExit("timed call failed")
            print(json.dumps({"latencies_ns": latencies}), flush=True)
            for i in range(approvals):
                args = {"vault": "dev", "name": "OTHER", "reason": f"approve {i}"}
                task = asyncio.create_task(session.call_tool("get_secret", args))
                await asyncio.sleep(0)
                print(json.dumps({"waiting": True}), flush=True)
                got = await task
                at = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
                text = [c.text for c in got.content if getattr(c, "type", "") == "text"]
                ok = not got.is_error and text == ["other-secret-91c2"]
                print(json.dumps({"value_at_ns": at, "ok": ok}), flush=True)


asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0))
