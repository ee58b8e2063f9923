"""A client that signs requests per docs/security.md ("HMAC request
signatures") with nothing but Python's standard library (hmac, hashlib,
base64, email.utils, tomllib) and sends them with `requests`. It shares no
code with meshgate: it is the independent implementation the e2e test
hmac:: holds the gateway to.

  hmac_client.py BASE_URL KEY_FILE

KEY_FILE is a shared-secret key file (`meshgate token keygen`); its first
key signs. Runs the cases below in order and prints one JSON object: for
each case, the status, the JSON error body's reason, the WWW-Authenticate
challenges, the response body, and the request it sent.
"""

import base64
import email.utils
import hashlib
import hmac
import json
import os
import sys
import time
import tomllib

import requests


def b64(data):
    return base64.b64encode(data).decode("ascii")


def nonce():
    # 16 random bytes, base64url without padding: 22 characters.
    return base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode("ascii")


def sign(secret, kid, method, target, body, date=None, the_nonce=None, date_header="Date"):
    """The three headers for `method target` with `body`, as documented:
    the signed string is six lines joined by LF, no trailing newline."""
    path, _, query = target.partition("?")
    date = date or email.utils.formatdate(time.time(), usegmt=True)
    the_nonce = the_nonce or nonce()
    digest = "sha-256=:" + b64(hashlib.sha256(body).digest()) + ":"
    signed = "\n".join([method, path, query, date, the_nonce, digest])
    mac = hmac.new(secret, signed.encode("ascii"), hashlib.sha256).digest()
    return {
        date_header: date,
        "Content-Digest": digest,
        "Signature": f'keyId="{kid}", algorithm="hmac-sha256", '
        f'nonce="{the_nonce}", signature="{b64(mac)}"',
    }


def send(base, method, target, headers, body):
    # A prepared request, so `requests` sends the target and the headers
    # exactly as given (no re-encoding of the query).
    session = requests.Session()
    req = requests.Request(method, base + target, headers=headers, data=body or None)
    prepared = session.prepare_request(req)
    prepared.url = base + target
    resp = session.send(prepared, timeout=20)
    try:
        reason = resp.json().get("reason")
    except ValueError:
        reason = None
    return {
        "status": resp.status_code,
        "reason": reason,
        "challenges": resp.headers.get("WWW-Authenticate"),
        "body": resp.text,
        "sent": {"method": method, "target": target, "headers": headers, "body": body.decode()},
    }


def main():
    base, key_file = sys.argv[1], sys.argv[2]
    with open(key_file, "rb") as f:
        first = tomllib.load(f)["keys"][0]
    kid, secret = first["kid"], base64.b64decode(first["secret"])
    out = {}

    def case(name, method, target, body=b"", sign_body=None, extra=None, **kw):
        headers = sign(secret, kid, method, target, body if sign_body is None else sign_body, **kw)
        headers.update(extra or {})
        out[name] = send(base, method, target, headers, body)

    case("get", "GET", "/orders?id=7&dry_run=1&q=a%20b")
    case("post", "POST", "/orders", b'{"qty":1}', extra={"Content-Type": "application/json"})
    case("x_date", "PUT", "/orders/7", b"seven", date_header="X-Date")
    # Signed for one body, sent with another of the same length.
    case("tampered", "POST", "/orders", b'{"qty":9}', sign_body=b'{"qty":1}')
    # The `post` request again, byte for byte: same nonce.
    sent = out["post"]["sent"]
    out["replay"] = send(base, "POST", "/orders", sent["headers"], sent["body"].encode())
    now = time.time()
    case("skew_old", "GET", "/orders", date=email.utils.formatdate(now - 301, usegmt=True))
    case("skew_new", "GET", "/orders", date=email.utils.formatdate(now + 301, usegmt=True))
    case("within_skew", "GET", "/orders", date=email.utils.formatdate(now - 240, usegmt=True))
    kid_saved = kid
    kid = "nobody"
    case("unknown_key", "GET", "/orders")
    kid = kid_saved
    secret_saved = secret
    secret = hashlib.sha256(b"not the key").digest()
    case("wrong_secret", "GET", "/orders")
    secret = secret_saved
    # Signed for /orders, sent to /orders/admin.
    headers = sign(secret, kid, "GET", "/orders", b"")
    out["other_path"] = send(base, "GET", "/orders/admin", headers, b"")
    out["unsigned"] = send(base, "GET", "/orders", {}, b"")
    case("too_large", "POST", "/orders", b"x" * 70000)
    print(json.dumps(out))


main()
