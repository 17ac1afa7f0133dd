#!/usr/bin/env python3
"""A local stand-in for the Bitwarden Secrets Manager CLI (`bws`), for the
tests only.

Written from Bitwarden's public documentation ("Secrets Manager CLI") and
the CLI's published argument definitions (bitwarden/sdk-sm, crates/bws):
only the calls agent-vault makes, with their JSON output:

    bws secret list [PROJECT_ID] --output json --color no
        -> [{"object": "secret", "id", "organizationId", "projectId", "key",
             "value", "note", "creationDate", "revisionDate"}]
    bws secret get SECRET_ID --output json --color no   -> one such object

The access token comes from BWS_ACCESS_TOKEN (as `bws` reads it); a missing
or unknown one, a project the machine account may not read, or a secret
that does not exist fail as `bws` does (exit 1, an error report on stderr
with the server's status). State: `bws-db.json` beside this script:
{"secrets": [...], "tokens": {token: [project ids]}, "mode": "" | "rate_limited"}.
Each call is appended to `bws-calls.log` (arguments and environment names).
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(sys.argv[0]))


def fail(message):
    sys.stderr.write(f"Error: \n   0: {message}\n\nLocation:\n   crates/bws/src/main.rs:120\n")
    sys.exit(1)


def main():
    with open(os.path.join(HERE, "bws-calls.log"), "a") as log:
        log.write(json.dumps({"argv": sys.argv[1:], "env": sorted(os.environ)}) + "\n")
    with open(os.path.join(HERE, "bws-db.json")) as f:
        db = json.load(f)
    args = sys.argv[1:]
    words = []
    i = 0
    while i < len(args):
        if args[i] in ("--output", "-o", "--color", "-c"):
            if args[i] in ("--output", "-o") and args[i + 1] != "json":
                fail("this stand-in prints JSON only")
            i += 2
            continue
        words.append(args[i])
        i += 1
    token = os.environ.get("BWS_ACCESS_TOKEN")
    if not token:
        fail("Missing access token")
    if db.get("mode") == "rate_limited":
        fail("Received error message from server: [429 Too Many Requests] Slow down")
    projects = db["tokens"].get(token)
    if projects is None:
        fail("Received error message from server: [401 Unauthorized] {\"message\":\"invalid_client\"}")
    readable = [s for s in db["secrets"] if s["projectId"] in projects]
    if words[:2] == ["secret", "list"]:
        if len(words) == 3:
            if words[2] not in projects:
                fail("Received error message from server: [404 Not Found] {\"message\":\"Resource not found.\"}")
            readable = [s for s in readable if s["projectId"] == words[2]]
        print(json.dumps([dict(s, object="secret") for s in readable]))
    elif words[:2] == ["secret", "get"] and len(words) == 3:
        found = [s for s in readable if s["id"] == words[2]]
        if not found:
            fail("Received error message from server: [404 Not Found] {\"message\":\"Resource not found.\"}")
        print(json.dumps(dict(found[0], object="secret")))
    else:
        fail(f"unrecognized subcommand '{' '.join(words)}'")


main()
