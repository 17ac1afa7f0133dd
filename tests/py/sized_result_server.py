"""An MCP server that answers every tool call at once with a text of a
given size: the floor of what a client (the Python SDK) takes to receive
a result that large, for tests/benches/run.rs.

Usage: sized_result_server.py <chars>
"""

import json
import sys

TEXT = ("compiling module 1234 of 5678: ok (12.3 ms)\n" * (int(sys.argv[1]) // 44 + 1))[: int(sys.argv[1])]

for line in sys.stdin:
    message = json.loads(line)
    if "id" not in message:
        continue
    method = message["method"]
    if method == "initialize":
        result = {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "sized-result", "version": "1"},
        }
    elif method == "tools/list":
        result = {"tools": [{"name": "sized", "inputSchema": {"type": "object"}}]}
    else:
        result = {"content": [{"type": "text", "text": TEXT}], "isError": False}
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}) + "\n")
    sys.stdout.flush()
