#!/usr/bin/env python3
"""An independent implementation of meshgate-auth's wire formats, written
from docs/security.md with Python's standard library only (hmac, hashlib,
base64, json, email.utils). tests/interop.rs runs it and holds the Rust
crate to its answers.

  interop.py vectors
      prints JSON: HMAC-signed requests (the signed string, Date,
      Content-Digest and Signature values), a session token, an API key
      and its stored hash, all computed here.
  interop.py verify-session SECRET_B64 TOKEN NOW
      verifies a session token made elsewhere; prints its claims as JSON
      and exits 0, or prints the reason and exits 1.
"""

import base64
import email.utils
import hashlib
import hmac
import json
import sys
import urllib.parse

# Fixed inputs: the Rust side reads them from the output, so they live in
# one place.
HMAC_SECRET = bytes(range(32))
KEY_ID = "client1"
SESSION_SECRET = hashlib.sha256(b"interop session secret").digest()
SESSION_KID = "py-k1"
NOW = 1772532000  # Tue, 03 Mar 2026 10:00:00 GMT


def b64(data):
    return base64.b64encode(data).decode("ascii")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    if "=" in text:
        raise ValueError("padding")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def content_digest(body):
    return "sha-256=:" + b64(hashlib.sha256(body).digest()) + ":"


def sign_request(method, path, query, body, unix, nonce):
    date = email.utils.formatdate(unix, usegmt=True)
    digest = content_digest(body)
    signed = "\n".join([method, path, query, date, nonce, digest])
    mac = hmac.new(HMAC_SECRET, signed.encode("ascii"), hashlib.sha256).digest()
    signature = (
        f'keyId="{KEY_ID}", algorithm="hmac-sha256", '
        f'nonce="{nonce}", signature="{b64(mac)}"'
    )
    return {
        "method": method,
        "path": path,
        "query": query,
        "body_hex": body.hex(),
        "unix": unix,
        "nonce": nonce,
        "signing_string": signed,
        "date": date,
        "content_digest": digest,
        "signature": signature,
    }


def requests():
    unicode_path = urllib.parse.quote("/café/ü/日本")
    return [
        sign_request("GET", "/items", "", b"", NOW, "AAAAAAAAAAAAAAAAAAAAAA"),
        sign_request("GET", "/items", "b=2&a=1&a=0", b"", NOW + 17, "nonce-with_url-safe-chars"),
        sign_request("POST", "/upload", "", bytes(range(256)) * 3, NOW - 250, "binary-body-0123456789"),
        sign_request(
            "PUT",
            unicode_path,
            "q=" + urllib.parse.quote("✓") + "&empty=",
            '{"name": "café"}'.encode("utf-8"),
            NOW,
            "u" * 64,
        ),
        sign_request("DELETE", "/a%2Fb/./c", "x=%20&y=+", b"\x00", NOW + 299, "Zm9vYmFyYmF6cXV4cXV1eA"),
    ]


def issue_session(subject, ttl, now, jti_bytes):
    claims = {
        "sub": subject,
        "iat": now,
        "exp": now + ttl,
        "kid": SESSION_KID,
        "jti": b64url(jti_bytes),
    }
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode("ascii"))
    signed = "mgs1." + payload
    mac = hmac.new(SESSION_SECRET, signed.encode("ascii"), hashlib.sha256).digest()
    return signed + "." + b64url(mac), claims


def verify_session(secret, token, now):
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != "mgs1":
        return None, "malformed"
    signed = parts[0] + "." + parts[1]
    want = hmac.new(secret, signed.encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(want, b64url_decode(parts[2])):
        return None, "bad_signature"
    claims = json.loads(b64url_decode(parts[1]))
    if set(claims) != {"sub", "iat", "exp", "kid", "jti"}:
        return None, "malformed"
    if not claims["iat"] <= now < claims["exp"]:
        return None, "expired"
    return claims, None


def vectors():
    token, claims = issue_session("user123@example.com", 3600, NOW, bytes(range(16)))
    key_bytes = hashlib.sha256(b"interop api key").digest()
    key = "mgk_" + b64url(key_bytes)
    return {
        "hmac_secret_b64": b64(HMAC_SECRET),
        "key_id": KEY_ID,
        "requests": requests(),
        "session": {
            "secret_b64": b64(SESSION_SECRET),
            "kid": SESSION_KID,
            "now": NOW,
            "token": token,
            "claims": claims,
        },
        "apikey": {
            "random_hex": key_bytes.hex(),
            "key": key,
            "hash": "sha256:" + hashlib.sha256(key.encode("ascii")).hexdigest(),
        },
    }


def main(argv):
    if argv[1:] == ["vectors"]:
        json.dump(vectors(), sys.stdout, indent=1)
        return 0
    if len(argv) == 5 and argv[1] == "verify-session":
        claims, reason = verify_session(base64.b64decode(argv[2]), argv[3], int(argv[4]))
        if claims is None:
            print(reason)
            return 1
        json.dump(claims, sys.stdout)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
