#!/usr/bin/env python3
"""A local stand-in for the 1Password CLI (`op`), for the tests only.

Written from 1Password's public documentation (developer.1password.com/docs/cli:
the command reference, "Item JSON template", secret reference syntax) and
the way 1Password's own Terraform provider drives `op` (JSON on stdin for
`item create -` and `item edit`), covering only the calls agent-vault
makes:

    op vault list --format=json
    op item list --vault=V --format=json
    op item get ITEM --vault=V --format=json
    op read [--no-newline] op://VAULT/ITEM[/SECTION]/FIELD --format=json
    op item create --vault=V - --format=json      (item JSON on stdin)
    op item edit ITEM --vault=V --format=json     (item JSON on stdin)

Authentication as `op` does it: OP_SERVICE_ACCOUNT_TOKEN in the
environment (a service account sees only the vaults it was granted, and
needs --vault on item commands), or, without a token and with
OP_BIOMETRIC_UNLOCK_ENABLED=true, the desktop app's sign-in. Errors are
printed as `op` prints them, `[ERROR] YYYY/MM/DD HH:MM:SS message`, with
exit status 1: unauthorized (401), forbidden (403), rate-limited (429),
not found.

Its state is `op-db.json` beside this script:
    {"vaults": [{"id", "name"}],
     "items": [{"id", "title", "category", "vault": {"id"}, "fields": [...]}],
     "tokens": {"<token>": {"read": [vault ids], "write": [vault ids]}},
     "desktop": {"read": [...], "write": [...]} (optional),
     "mode": "" | "hang" | "rate_limited" | "slow:SECONDS"}
Each call is appended to `op-calls.log` (its arguments and the names of
its environment variables, never their values) so that tests can check
what agent-vault passes where.
"""

import fcntl
import json
import os
import secrets
import sys
import time

HERE = os.path.dirname(os.path.abspath(sys.argv[0]))
DB = os.path.join(HERE, "op-db.json")
LOG = os.path.join(HERE, "op-calls.log")


def fail(message):
    stamp = time.strftime("%Y/%m/%d %H:%M:%S")
    sys.stderr.write(f"[ERROR] {stamp} {message}\n")
    sys.exit(1)


def parse(argv):
    words, flags = [], {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--") and "=" in a:
            k, v = a[2:].split("=", 1)
            flags[k] = v
        elif a in ("--no-newline", "-n"):
            flags["no-newline"] = True
        elif a.startswith("--"):
            if i + 1 >= len(argv):
                fail(f'flag needs an argument: "{a}"')
            flags[a[2:]] = argv[i + 1]
            i += 1
        else:
            words.append(a)
        i += 1
    return words, flags


def main():
    with open(LOG, "a") as log:
        log.write(json.dumps({"argv": sys.argv[1:], "env": sorted(os.environ)}) + "\n")
    lock = open(DB, "r+")
    fcntl.flock(lock, fcntl.LOCK_EX)
    db = json.load(lock)
    if db.get("mode") == "hang":
        fcntl.flock(lock, fcntl.LOCK_UN)
        time.sleep(3600)
    if db.get("mode", "").startswith("slow:"):
        fcntl.flock(lock, fcntl.LOCK_UN)
        time.sleep(float(db["mode"][len("slow:"):]))
        fcntl.flock(lock, fcntl.LOCK_EX)
    if db.get("mode") == "rate_limited":
        fail("(429) Too Many Requests: rate limit exceeded, retry later")

    token = os.environ.get("OP_SERVICE_ACCOUNT_TOKEN")
    if token is not None:
        grant = db.get("tokens", {}).get(token)
        if grant is None:
            fail("(401) Unauthorized: You aren't authorized to perform this action. The service account token is invalid.")
    elif os.environ.get("OP_BIOMETRIC_UNLOCK_ENABLED") == "true" and "desktop" in db:
        grant = db["desktop"]
    else:
        fail("You are not currently signed in. Please run `op signin --help` for instructions")

    words, flags = parse(sys.argv[1:])
    if flags.get("format") != "json":
        fail("this stand-in only prints JSON: pass --format=json")

    def vault(ref, write=False):
        for v in db["vaults"]:
            if ref in (v["id"], v["name"]) and v["id"] in grant["read"]:
                if write and v["id"] not in grant.get("write", []):
                    fail("(403) Forbidden: You do not have permission to perform this action.")
                return v
        fail(f'"{ref}" isn\'t a vault in this account. Specify the vault with its ID or name.')

    def needs_vault():
        if "vault" not in flags:
            fail("a vault must be specified with --vault when using a service account")
        return vault(flags["vault"])

    def item_of(ref, v):
        for it in db["items"]:
            if it["vault"]["id"] == v["id"] and ref in (it["id"], it["title"]):
                return it
        fail(f'"{ref}" isn\'t an item in the "{v["name"]}" vault. Specify the item with its UUID, name, or domain.')

    def full(it, v):
        out = dict(it)
        out["vault"] = {"id": v["id"], "name": v["name"]}
        out["fields"] = [
            dict(f, reference=f"op://{v['name']}/{it['title']}/{f.get('label') or f['id']}")
            for f in it.get("fields", [])
        ]
        return out

    def save():
        lock.seek(0)
        lock.truncate()
        json.dump(db, lock)

    cmd = words[:2]
    if cmd == ["vault", "list"]:
        print(json.dumps([{"id": v["id"], "name": v["name"], "content_version": 1}
                          for v in db["vaults"] if v["id"] in grant["read"]]))
    elif cmd == ["item", "list"]:
        v = needs_vault()
        print(json.dumps([
            {"id": it["id"], "title": it["title"], "version": 1,
             "vault": {"id": v["id"], "name": v["name"]},
             "category": it.get("category", "LOGIN"),
             "last_edited_by": "stand-in", "created_at": "2026-01-01T00:00:00Z",
             "updated_at": "2026-01-01T00:00:00Z"}
            for it in db["items"] if it["vault"]["id"] == v["id"]]))
    elif cmd == ["item", "get"] and len(words) == 3:
        v = needs_vault()
        print(json.dumps(full(item_of(words[2], v), v)))
    elif words[:1] == ["read"] and len(words) == 2:
        ref = words[1]
        if not ref.startswith("op://"):
            fail(f"could not read secret '{ref}': invalid secret reference: expected op://")
        parts = ref[len("op://"):].split("?")[0].split("/")
        if len(parts) not in (3, 4):
            fail(f"could not read secret '{ref}': invalid secret reference")
        v = vault(parts[0])
        it = item_of(parts[1], v)
        label = parts[-1]
        for f in it.get("fields", []):
            if label in (f.get("label"), f["id"]):
                sys.stdout.write(f.get("value", "") + ("" if flags.get("no-newline") else "\n"))
                return
        fail(f"could not read secret '{ref}': \"{label}\" isn't a field in the \"{it['title']}\" item")
    elif cmd == ["item", "create"] and words[2:] == ["-"]:
        v = vault(flags.get("vault", ""), write=True)
        template = json.load(sys.stdin)
        it = {"id": secrets.token_hex(13), "title": template["title"],
              "category": template.get("category", "LOGIN"),
              "vault": {"id": v["id"]}, "fields": template.get("fields", [])}
        db["items"].append(it)
        save()
        print(json.dumps(full(it, v)))
    elif cmd == ["item", "edit"] and len(words) == 3:
        v = vault(flags.get("vault", ""), write=True)
        it = item_of(words[2], v)
        template = json.load(sys.stdin)
        it["fields"] = [{k: f[k] for k in f if k != "reference"} for f in template.get("fields", [])]
        save()
        print(json.dumps(full(it, v)))
    else:
        fail(f"unknown command \"{' '.join(words)}\" for \"op\"")


main()
