#!/usr/bin/env python3
"""A local stand-in for a 1Password Connect server, for the tests only.

Written from 1Password's public Connect API reference (the "Connect server
API" page and its OpenAPI document): only the calls agent-vault makes, with
the documented shapes.

    GET  /v1/vaults                          -> [{"id", "name", ...}]
    GET  /v1/vaults/{vault}/items            -> [{"id", "title", "vault": {"id"}, "category", ...}]
    GET  /v1/vaults/{vault}/items/{item}     -> FullItem (with "fields", "sections")
    POST /v1/vaults/{vault}/items            -> the created FullItem
    PUT  /v1/vaults/{vault}/items/{item}     -> the replaced FullItem

Every call needs `Authorization: Bearer <token>`; errors are
`{"status": N, "message": "..."}` with 401 (a bad token), 403 (a vault the
token may not use), 404 (no such vault or item) and 429 (rate-limited).

Usage: connect_standin.py PORT DB_JSON. The state file is as op_standin.py's
({"vaults", "items", "tokens": {token: {"read", "write"}}, "mode"}); it is
rewritten after each write. Listens on 127.0.0.1 only.
"""

import json
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
DB_PATH = sys.argv[2]
LOCK = threading.Lock()


def load():
    with open(DB_PATH) as f:
        return json.load(f)


def save(db):
    with open(DB_PATH, "w") as f:
        json.dump(db, f)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, message):
        self.reply(status, {"status": status, "message": message})

    def handle_any(self, method):
        with LOCK:
            db = load()
            if db.get("mode") == "rate_limited":
                return self.error(429, "Too many requests")
            auth = self.headers.get("Authorization", "")
            grant = db["tokens"].get(auth[len("Bearer "):]) if auth.startswith("Bearer ") else None
            if grant is None:
                return self.error(401, "Invalid bearer token")
            parts = [p for p in self.path.split("?")[0].split("/") if p]
            if parts[:2] != ["v1", "vaults"]:
                return self.error(404, "Not found")
            if len(parts) == 2 and method == "GET":
                return self.reply(200, [
                    {"id": v["id"], "name": v["name"], "type": "USER_CREATED", "items": 0}
                    for v in db["vaults"] if v["id"] in grant["read"]])
            vault = next((v for v in db["vaults"] if v["id"] == parts[2]), None)
            if vault is None:
                return self.error(404, "Vault not found")
            writing = method in ("POST", "PUT")
            if vault["id"] not in grant["read"] or (writing and vault["id"] not in grant.get("write", [])):
                return self.error(403, "Authorization: token does not have access to this vault")
            if len(parts) == 4 and parts[3] == "items":
                if method == "GET":
                    return self.reply(200, [
                        {"id": it["id"], "title": it["title"], "vault": {"id": vault["id"]},
                         "category": it.get("category", "LOGIN"), "version": 1}
                        for it in db["items"] if it["vault"]["id"] == vault["id"]])
                if method == "POST":
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                    it = {"id": secrets.token_hex(13), "title": body["title"],
                          "category": body.get("category", "LOGIN"), "vault": {"id": vault["id"]},
                          "fields": body.get("fields", []), "sections": body.get("sections", [])}
                    db["items"].append(it)
                    save(db)
                    return self.reply(200, it)
            if len(parts) == 5 and parts[3] == "items":
                it = next((i for i in db["items"]
                           if i["vault"]["id"] == vault["id"] and i["id"] == parts[4]), None)
                if it is None:
                    return self.error(404, "Item not found")
                if method == "GET":
                    return self.reply(200, dict(it, vault={"id": vault["id"]}))
                if method == "PUT":
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                    it["fields"] = body.get("fields", [])
                    it["sections"] = body.get("sections", it.get("sections", []))
                    it["title"] = body.get("title", it["title"])
                    save(db)
                    return self.reply(200, it)
            return self.error(404, "Not found")

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
