"""The run_with_secrets benchmark's client: the official MCP SDK (`mcp`)
driving agent-vault-mcp, as a Python-based agent does.

Usage: run_bench_client.py <server> <calls> <args-json>

Times <calls> calls of run_with_secrets with <args-json> (after 3 warm-up
calls), alternating with as many runs of the same command directly (an
asyncio subprocess with the same environment, its output read whole), so
that both see the same machine; then as many calls of a server that
answers at once with a text of the same size (sized_result_server.py):
what this client alone takes to receive such a result. Prints one JSON
line {"tool_ns": [...], "direct_ns": [...], "floor_ns": [...],
"tool_chars": N, "direct_bytes": N}.
Values are never printed.
"""

import asyncio
import json
import os
import sys
import time

from mcp import ClientSession, StdioServerParameters, stdio_client


async def direct(argv, env):
    p = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await p.communicate()
    return len(out) + len(err)


async def main(server, calls, args):
    env = {k: os.environ[k] for k in ("HOME", "AGENT_VAULT_HOME", "PATH") if k in os.environ}
    params = StdioServerParameters(command=server, env=env, cwd=os.getcwd())
    # The direct run gets a value of the same length in the same variable.
    direct_env = dict(env, API_KEY="x" * 21)
    tool, plain, chars, size = [], [], 0, 0
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await session.list_tools()
            for _ in range(3):
                r = await session.call_tool("run_with_secrets", args)
                if r.is_error:
                    raise SystemExit("warm-up call failed")
            for _ in range(calls):
                t = time.perf_counter_ns()
                r = await session.call_tool("run_with_secrets", args)
                tool.append(time.perf_counter_ns() - t)
                if r.is_error:
                    raise SystemExit("a timed call failed")
                chars = sum(len(c.text) for c in r.content)
                t = time.perf_counter_ns()
                size = await direct(args["command"], direct_env)
                plain.append(time.perf_counter_ns() - t)
    floor = []
    here = os.path.dirname(os.path.abspath(__file__))
    sized = StdioServerParameters(
        command=sys.executable, args=[os.path.join(here, "sized_result_server.py"), str(chars)]
    )
    async with stdio_client(sized) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            for i in range(calls + 3):
                t = time.perf_counter_ns()
                await session.call_tool("sized", {})
                if i >= 3:
                    floor.append(time.perf_counter_ns() - t)
    print(json.dumps({"tool_ns": tool, "direct_ns": plain, "floor_ns": floor, "tool_chars": chars, "direct_bytes": size}))


asyncio.run(main(sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])))
