"""An upstream that verifies the HMAC signatures meshgate adds (a cluster's
`sign`), written from docs/security.md with Python's standard library only
(hmac, hashlib, base64, email.utils, tomllib, http.server). It shares no
code with meshgate.

  hmac_upstream.py KEY_FILE

Listens on 127.0.0.1:0 and prints its port. Every request must carry a
signature by KEY_FILE's first key over its method, path, query, date,
nonce and body: the date within 300 s, the body's SHA-256 equal to
Content-Digest, and a nonce never seen before (a replay cache, as a real
verifier keeps). It answers 200 with what it verified, as JSON, or 401
with why not. The first verified request to /flaky gets a 503 instead, so
the test can see that a retry is signed again with a new nonce.
"""

import base64
import email.utils
import hashlib
import hmac
import json
import re
import sys
import threading
import time
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

with open(sys.argv[1], "rb") as f:
    FIRST = tomllib.load(f)["keys"][0]
KID, SECRET = FIRST["kid"], base64.b64decode(FIRST["secret"])
PARAM = re.compile(r'\s*([A-Za-z]+)="([^"]*)"\s*(?:,|$)')

seen = set()
flaky_failed = False
lock = threading.Lock()


def verify(method, target, headers, body):
    """The signature's nonce, or raises ValueError saying why not."""
    signatures = headers.get_all("Signature") or []
    if len(signatures) != 1:
        raise ValueError(f"{len(signatures)} Signature headers")
    params = dict(PARAM.findall(signatures[0]))
    if set(params) != {"keyId", "algorithm", "nonce", "signature"}:
        raise ValueError(f"parameters {sorted(params)}")
    if params["keyId"] != KID or params["algorithm"] != "hmac-sha256":
        raise ValueError(f"key {params['keyId']} / {params['algorithm']}")
    if headers.get("X-Date") is not None:
        raise ValueError("an X-Date header came through")
    date = headers.get("Date") or ""
    when = email.utils.parsedate_to_datetime(date).timestamp()
    if abs(when - time.time()) > 300:
        raise ValueError(f"date {date} outside 300 s")
    digest = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
    if headers.get("Content-Digest") != digest:
        raise ValueError(f"Content-Digest {headers.get('Content-Digest')} is not the body's {digest}")
    path, _, query = target.partition("?")
    signed = "\n".join([method, path, query, date, params["nonce"], digest])
    mac = hmac.new(SECRET, signed.encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(base64.b64encode(mac).decode(), params["signature"]):
        raise ValueError("MAC does not match")
    with lock:
        if params["nonce"] in seen:
            raise ValueError("replayed nonce")
        seen.add(params["nonce"])
    return params["nonce"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_any(self):
        global flaky_failed
        if "chunked" in (self.headers.get("Transfer-Encoding") or ""):
            return self.answer(400, {"why": "a signed body should come with its length"})
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            nonce = verify(self.command, self.path, self.headers, body)
        except (ValueError, TypeError, KeyError) as e:
            return self.answer(401, {"verified": False, "why": str(e)})
        with lock:
            fail = self.path.startswith("/flaky") and not flaky_failed
            flaky_failed = flaky_failed or fail
        if fail:
            return self.answer(503, {"verified": True, "nonce": nonce, "failed": True})
        self.answer(200, {
            "verified": True,
            "nonce": nonce,
            "body": body.decode(),
            "signature": self.headers.get("Signature"),
            "content_length": self.headers.get("Content-Length"),
        })

    do_GET = do_POST = do_PUT = do_DELETE = handle_any

    def answer(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
