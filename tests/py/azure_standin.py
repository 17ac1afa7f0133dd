#!/usr/bin/env python3
"""A local stand-in for Azure Key Vault (secrets) and Microsoft Entra ID's
token endpoint, for the tests only.

Written from Microsoft's public documentation: the Key Vault REST reference
(api-version 7.4: Get Secrets, Get Secret, Set Secret; paging by nextLink;
the error shape), "Microsoft identity platform and the OAuth 2.0 client
credentials flow" (the v2.0 token endpoint and its errors), and "How to use
managed identities for App Service" (IDENTITY_ENDPOINT with the
X-IDENTITY-HEADER header). Only the calls agent-vault makes:

    POST /{tenant}/oauth2/v2.0/token    grant_type=client_credentials, client_id, client_secret, scope
                                        -> {"token_type", "expires_in", "access_token"}
    GET  /msi/token?resource=R&api-version=2019-08-01   (X-IDENTITY-HEADER)
                                        -> {"access_token", "expires_on", "resource", "token_type"}
    GET  /secrets?api-version=7.4&maxresults=N[&$skiptoken=T] -> {"value": [{"id", "attributes"}], "nextLink"}
    GET  /secrets/{name}?api-version=7.4 -> {"value", "id", "attributes"}
    PUT  /secrets/{name}?api-version=7.4 {"value"} -> the new version

Key Vault's errors are {"error": {"code", "message"}}: 401 Unauthorized,
403 Forbidden (ForbiddenByRbac), 404 SecretNotFound, 429 Throttled (the
state's "mode": "ratelimit"); Entra ID's are {"error", "error_description",
"error_codes"}.

Usage: azure_standin.py PORT DB_JSON. The state: {"tenant": id, "clients":
{client_id: {"secret", "permissions": ["list", "get", "set"]}},
"identity_header": h, "identity_client": client_id, "secrets": {name:
{"versions": [value...], "enabled": bool}}, "tokens": {token: client_id},
"mode": ""}; rewritten after each change. Listens on 127.0.0.1 only.
"""

import json
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RESOURCE = "https://vault.azure.net"
PORT = int(sys.argv[1])
DB_PATH = sys.argv[2]
BASE = f"http://127.0.0.1:{PORT}"
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
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def kv_error(self, status, code, message, inner=None):
        err = {"code": code, "message": message}
        if inner:
            err["innererror"] = {"code": inner}
        self.reply(status, {"error": err})

    def entra_error(self, status, error, code, description):
        self.reply(status, {
            "error": error,
            "error_description": f"AADSTS{code}: {description} Trace ID: 0000 Correlation ID: 0000 Timestamp: 2026-12-06 00:00:00Z",
            "error_codes": [code],
        })

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def issue(self, db, client_id):
        token = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(24)
        db.setdefault("tokens", {})[token] = client_id
        save(db)
        return token

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def handle_any(self, method):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        parts = [urllib.parse.unquote(p) for p in url.path.split("/")[1:]]
        with LOCK:
            db = load()
            if method == "POST" and len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
                return self.token(db, parts[0], dict(urllib.parse.parse_qsl(self.body().decode())))
            if method == "GET" and parts == ["msi", "token"]:
                if self.headers.get("X-IDENTITY-HEADER") != db["identity_header"]:
                    return self.reply(401, {"statusCode": 401, "message": "Unauthorized request"})
                if query.get("resource") != RESOURCE or query.get("api-version") != "2019-08-01":
                    return self.reply(400, {"statusCode": 400, "message": "Bad request"})
                token = self.issue(db, db["identity_client"])
                return self.reply(200, {
                    "access_token": token,
                    "expires_on": str(int(time.time()) + 86399),
                    "resource": RESOURCE,
                    "token_type": "Bearer",
                    "client_id": db["identity_client"],
                })
            if parts and parts[0] == "secrets":
                return self.key_vault(db, method, parts[1:], query)
            return self.kv_error(404, "NotFound", "Not found")

    def token(self, db, tenant, form):
        if tenant != db["tenant"]:
            return self.entra_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return self.entra_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        if form.get("scope") != RESOURCE + "/.default":
            return self.entra_error(400, "invalid_scope", 1002012, "The provided value for scope is not valid.")
        client = db["clients"].get(form.get("client_id", ""))
        if client is None:
            return self.entra_error(400, "unauthorized_client", 700016, f"Application with identifier '{form.get('client_id')}' was not found in the directory.")
        if form.get("client_secret") != client["secret"]:
            return self.entra_error(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
        token = self.issue(db, form["client_id"])
        return self.reply(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})

    def key_vault(self, db, method, rest, query):
        if query.get("api-version") != "7.4":
            return self.kv_error(400, "BadParameter", "The request URI contains an invalid or missing api-version.")
        auth = self.headers.get("Authorization", "")
        client_id = db.get("tokens", {}).get(auth.removeprefix("Bearer "))
        if not auth.startswith("Bearer ") or client_id is None:
            return self.kv_error(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
        if db.get("mode") == "ratelimit":
            return self.kv_error(429, "Throttled", "Request was not allowed because the rate limit was exceeded. Retry after 10 seconds.")
        allowed = db["clients"].get(client_id, {}).get("permissions", ["list", "get", "set"])

        def forbidden(action):
            return self.kv_error(403, "Forbidden", f"Caller is not authorized to perform action on resource.\r\nCaller: appid={client_id}\r\nAction: 'Microsoft.KeyVault/vaults/secrets/{action}'", "ForbiddenByRbac")

        store = db["secrets"]
        by_lower = {k.lower(): k for k in store}
        if method == "GET" and rest in ([], [""]):
            if "list" not in allowed:
                return forbidden("readMetadata/action")
            names = sorted(store)
            size = int(query.get("maxresults", "25"))
            start = int(query.get("$skiptoken") or 0)
            page = names[start:start + size]
            body = {"value": [
                {"id": f"{BASE}/secrets/{n}", "attributes": {"enabled": store[n].get("enabled", True), "recoveryLevel": "Recoverable+Purgeable"}, "tags": {}}
                for n in page
            ], "nextLink": None}
            if start + size < len(names):
                body["nextLink"] = f"{BASE}/secrets?api-version=7.4&$skiptoken={start + size}&maxresults={size}"
            return self.reply(200, body)
        if len(rest) != 1:
            return self.kv_error(404, "NotFound", "Not found")
        name = by_lower.get(rest[0].lower(), rest[0])
        if method == "GET":
            if "get" not in allowed:
                return forbidden("getSecret/action")
            s = store.get(name)
            if s is None:
                return self.kv_error(404, "SecretNotFound", f"A secret with (name/id) {rest[0]} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command.")
            if not s.get("enabled", True):
                return self.kv_error(403, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled")
            return self.reply(200, {"value": s["versions"][-1], "id": f"{BASE}/secrets/{name}/{len(s['versions'])}", "attributes": {"enabled": True}})
        if method == "PUT":
            if "set" not in allowed:
                return forbidden("setSecret/action")
            value = json.loads(self.body())["value"]
            store.setdefault(name, {"versions": [], "enabled": True})["versions"].append(value)
            save(db)
            return self.reply(200, {"value": value, "id": f"{BASE}/secrets/{name}/{len(store[name]['versions'])}", "attributes": {"enabled": True}})
        return self.kv_error(405, "MethodNotAllowed", "Method not allowed")


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
