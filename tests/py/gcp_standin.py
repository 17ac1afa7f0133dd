#!/usr/bin/env python3
"""A local stand-in for Google Cloud Secret Manager and Google's OAuth
token endpoint, for the tests only.

Written from Google's public documentation: the Secret Manager REST
reference (v1: projects.secrets.list, .create, .addVersion,
projects.secrets.versions.access), "Using OAuth 2.0 for Server to Server
Applications" (the JWT a service account signs and trades for a token),
and the Compute Engine metadata server's token endpoint. Only the calls
agent-vault makes, with the documented shapes:

    POST /token                      grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT
                                     -> {"access_token", "expires_in", "token_type"}
                                     (the JWT's RS256 signature is checked against the account's public key,
                                     and its iss, aud, scope and exp)
    GET  /computeMetadata/v1/instance/service-accounts/default/token   (Metadata-Flavor: Google)
    GET  /v1/projects/{p}/secrets?pageSize=N&pageToken=T  -> {"secrets": [{"name": "projects/NUMBER/secrets/ID"}], "nextPageToken"}
    POST /v1/projects/{p}/secrets?secretId=ID             -> the secret
    POST /v1/projects/{p}/secrets/{id}:addVersion         -> the version
    GET  /v1/projects/{p}/secrets/{id}/versions/latest:access -> {"name", "payload": {"data": base64}}

Errors are Google's shape, {"error": {"code", "message", "status"}}: 401
UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 NOT_FOUND, 429
RESOURCE_EXHAUSTED (the state's "mode": "ratelimit"); the token endpoint's
are OAuth's, {"error": "invalid_grant", "error_description"}.

Usage: gcp_standin.py PORT DB_JSON, or gcp_standin.py keygen EMAIL
TOKEN_URI (prints {"key": <service account JSON key>, "public": PEM}). The
state: {"project": id, "number": n, "accounts": {email: {"public": PEM,
"permissions": ["list", "access", "write"]}}, "metadata_account": email,
"secrets": {id: [base64 versions]}, "mode": "", "tokens": {token: email}};
rewritten after each change. Listens on 127.0.0.1 only.
"""

import base64
import json
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def keygen(email, token_uri):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    print(json.dumps({
        "key": {
            "type": "service_account",
            "project_id": "demo-project",
            "private_key_id": secrets.token_hex(20),
            "private_key": private,
            "client_email": email,
            "client_id": str(secrets.randbelow(10**20)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
        },
        "public": public,
    }))


def verify_jwt(jwt, public_pem, audience):
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    header_b64, claims_b64, sig_b64 = jwt.split(".")
    header = json.loads(b64url_decode(header_b64))
    claims = json.loads(b64url_decode(claims_b64))
    if header.get("alg") != "RS256":
        return None, "Invalid JWT: alg"
    key = serialization.load_pem_public_key(public_pem.encode())
    try:
        key.verify(
            b64url_decode(sig_b64),
            f"{header_b64}.{claims_b64}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except InvalidSignature:
        return None, "Invalid JWT Signature."
    now = time.time()
    if claims.get("aud") != audience:
        return None, "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
    if not (claims.get("iat", 0) - 300 <= now <= claims.get("exp", 0)) or claims["exp"] - claims["iat"] > 3600:
        return None, "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
    if SCOPE not in claims.get("scope", "").split():
        return None, "Invalid OAuth scope or ID token audience provided."
    return claims, None


class State:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()

    def load(self):
        with open(self.path) as f:
            return json.load(f)

    def save(self, db):
        with open(self.path, "w") as f:
            json.dump(db, f)


def make_handler(state, port):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def google_error(self, code, status, message):
            self.reply(code, {"error": {"code": code, "message": message, "status": status}})

        def body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def issue(self, db, email):
            token = "ya29." + secrets.token_urlsafe(24)
            db.setdefault("tokens", {})[token] = email
            state.save(db)
            self.reply(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

        def do_GET(self):
            self.handle_any("GET")

        def do_POST(self):
            self.handle_any("POST")

        def handle_any(self, method):
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            with state.lock:
                db = state.load()
                if method == "POST" and url.path == "/token":
                    return self.token(db, dict(urllib.parse.parse_qsl(self.body().decode())))
                if url.path == "/computeMetadata/v1/instance/service-accounts/default/token":
                    if self.headers.get("Metadata-Flavor") != "Google":
                        return self.reply(403, {"error": "Missing Metadata-Flavor:Google header."})
                    return self.issue(db, db["metadata_account"])
                return self.api(db, method, url.path, query)

        def token(self, db, form):
            audience = f"http://127.0.0.1:{port}/token"
            if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
                return self.reply(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})
            jwt = form.get("assertion", "")
            try:
                claims = json.loads(b64url_decode(jwt.split(".")[1]))
            except Exception:
                return self.reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT."})
            account = db["accounts"].get(claims.get("iss"))
            if account is None:
                return self.reply(400, {"error": "invalid_grant", "error_description": "Invalid grant: account not found"})
            claims, why = verify_jwt(jwt, account["public"], audience)
            if why:
                return self.reply(400, {"error": "invalid_grant", "error_description": why})
            return self.issue(db, claims["iss"])

        def api(self, db, method, path, query):
            auth = self.headers.get("Authorization", "")
            email = db.get("tokens", {}).get(auth.removeprefix("Bearer "))
            if not auth.startswith("Bearer ") or email is None:
                return self.google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.")
            if db.get("mode") == "ratelimit":
                return self.google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Access requests' and limit 'Access requests per minute' of service 'secretmanager.googleapis.com'.")
            allowed = db["accounts"].get(email, {}).get("permissions", ["list", "access", "write"])
            parts = path.split("/")
            # ["", "v1", "projects", P, "secrets", ...]
            if len(parts) < 5 or parts[1] != "v1" or parts[2] != "projects" or parts[4] != "secrets":
                return self.google_error(404, "NOT_FOUND", "Requested entity was not found.")
            if urllib.parse.unquote(parts[3]) not in (db["project"], str(db["number"])):
                return self.google_error(403, "PERMISSION_DENIED", f"Permission denied on resource project {parts[3]}.")
            prefix = f"projects/{db['number']}/secrets"
            rest = [urllib.parse.unquote(p) for p in parts[5:]]
            store = db["secrets"]
            if method == "GET" and not rest:
                if "list" not in allowed:
                    return self.google_error(403, "PERMISSION_DENIED", f"Permission 'secretmanager.secrets.list' denied for resource 'projects/{db['project']}' (or it may not exist).")
                ids = sorted(store)
                size = int(query.get("pageSize", "25"))
                start = int(query.get("pageToken") or 0)
                page = ids[start:start + size]
                body = {"secrets": [{"name": f"{prefix}/{i}", "replication": {"automatic": {}}} for i in page]}
                if start + size < len(ids):
                    body["nextPageToken"] = str(start + size)
                body["totalSize"] = len(ids)
                return self.reply(200, body)
            if method == "POST" and not rest:
                if "write" not in allowed:
                    return self.google_error(403, "PERMISSION_DENIED", f"Permission 'secretmanager.secrets.create' denied for resource 'projects/{db['project']}' (or it may not exist).")
                sid = query.get("secretId", "")
                if sid in store:
                    return self.google_error(409, "ALREADY_EXISTS", f"Secret [{prefix}/{sid}] already exists.")
                store[sid] = []
                state.save(db)
                return self.reply(200, {"name": f"{prefix}/{sid}", "replication": {"automatic": {}}})
            if method == "POST" and len(rest) == 1 and rest[0].endswith(":addVersion"):
                sid = rest[0].removesuffix(":addVersion")
                if "write" not in allowed:
                    return self.google_error(403, "PERMISSION_DENIED", f"Permission 'secretmanager.versions.add' denied for resource '{prefix}/{sid}' (or it may not exist).")
                if sid not in store:
                    return self.google_error(404, "NOT_FOUND", f"Secret [{prefix}/{sid}] not found.")
                data = json.loads(self.body())["payload"]["data"]
                store[sid].append(data)
                state.save(db)
                return self.reply(200, {"name": f"{prefix}/{sid}/versions/{len(store[sid])}", "state": "ENABLED"})
            if method == "GET" and len(rest) == 3 and rest[1] == "versions" and rest[2] == "latest:access":
                sid = rest[0]
                if "access" not in allowed:
                    return self.google_error(403, "PERMISSION_DENIED", f"Permission 'secretmanager.versions.access' denied for resource '{prefix}/{sid}/versions/latest' (or it may not exist).")
                if not store.get(sid):
                    return self.google_error(404, "NOT_FOUND", f"Secret [{prefix}/{sid}] not found or has no versions.")
                return self.reply(200, {
                    "name": f"{prefix}/{sid}/versions/{len(store[sid])}",
                    "payload": {"data": store[sid][-1], "dataCrc32c": "0"},
                })
            return self.google_error(404, "NOT_FOUND", "Requested entity was not found.")

    return Handler


def main():
    if sys.argv[1] == "keygen":
        return keygen(sys.argv[2], sys.argv[3])
    port = int(sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(State(sys.argv[2]), port))
    server.serve_forever()


if __name__ == "__main__":
    main()
