#!/usr/bin/env python3
"""Interop vectors for meshgate-jwt, made with PyJWT (an independent JWT
implementation) and pyca/cryptography.

Usage: pyjwt_vectors.py OUT_DIR

Writes into OUT_DIR:
  jwks.json                  RSA-2048, P-256, Ed25519 and an oct key, as PyJWT writes JWKs
  rsa.pem, ec.pem, ed.pem    the same public keys as SPKI "PUBLIC KEY" PEM
  vectors.json               now, the validator, the HS secret and the cases

Each case is a token, the key source the verifier should load, and the
expected outcome: "ok" or a meshgate-jwt reason code. Where PyJWT can judge a
case with the same key and options, the script asks it first and stops if
PyJWT disagrees with the expectation, so the expectations are PyJWT's too.

Exit status 3 means PyJWT or cryptography is missing.
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time

try:
    import jwt
    from jwt.algorithms import ECAlgorithm, HMACAlgorithm, OKPAlgorithm, RSAAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
except ImportError as e:
    print(f"missing Python module ({e}): pip install pyjwt cryptography", file=sys.stderr)
    sys.exit(3)

ISSUER = "https://issuer.example"
AUDIENCE = "meshgate"
LEEWAY = 60
ALGS = ["HS256", "RS256", "ES256", "EdDSA"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pem(private_key) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def jwk(algorithm, public_key, kid: str, alg: str) -> dict:
    key = algorithm.to_jwk(public_key, as_dict=True)
    key.update({"kid": kid, "alg": alg, "use": "sig"})
    return key


def main() -> None:
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    now = int(time.time())

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ed_key = ed25519.Ed25519PrivateKey.generate()
    secret = os.urandom(48)

    jwks = {
        "keys": [
            jwk(RSAAlgorithm, rsa_key.public_key(), "rsa-1", "RS256"),
            jwk(ECAlgorithm, ec_key.public_key(), "ec-1", "ES256"),
            jwk(OKPAlgorithm, ed_key.public_key(), "ed-1", "EdDSA"),
            {**json.loads(HMACAlgorithm.to_jwk(secret)), "kid": "hs-1", "alg": "HS256"},
        ]
    }
    with open(os.path.join(out, "jwks.json"), "w") as f:
        json.dump(jwks, f)
    for name, key in [("rsa", rsa_key), ("ec", ec_key), ("ed", ed_key)]:
        with open(os.path.join(out, f"{name}.pem"), "wb") as f:
            f.write(pem(key))

    signing = {"RS256": rsa_key, "ES256": ec_key, "EdDSA": ed_key, "HS256": secret}
    verifying = {
        "RS256": rsa_key.public_key(),
        "ES256": ec_key.public_key(),
        "EdDSA": ed_key.public_key(),
        "HS256": secret,
    }
    kids = {"RS256": "rsa-1", "ES256": "ec-1", "EdDSA": "ed-1", "HS256": "hs-1"}
    pem_source = {"RS256": "pem_rsa", "ES256": "pem_ec", "EdDSA": "pem_ed"}

    def claims(**over):
        base = {
            "sub": "alice",
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 3600,
            "realm_access": {"roles": ["reader", "writer"]},
        }
        base.update(over)
        return {k: v for k, v in base.items() if v is not None}

    def token(alg="RS256", kid="default", headers=None, key=None, **over):
        headers = dict(headers or {})
        if kid == "default":
            kid = kids[alg]
        if kid is not None:
            headers["kid"] = kid
        return jwt.encode(claims(**over), key or signing[alg], algorithm=alg, headers=headers)

    def hs256_by_hand(secret_bytes: bytes, header: dict, payload: dict) -> str:
        # PyJWT refuses to use a PEM as an HMAC secret, so the forgery is
        # built by hand: exactly what an attacker holding the public key does.
        h = b64(json.dumps(header, separators=(",", ":")).encode())
        p = b64(json.dumps(payload, separators=(",", ":")).encode())
        mac = hmac.new(secret_bytes, f"{h}.{p}".encode(), hashlib.sha256).digest()
        return f"{h}.{p}.{b64(mac)}"

    def tamper_payload(t: str) -> str:
        h, _, s = t.split(".")
        return f"{h}.{b64(json.dumps(claims(sub='admin')).encode())}.{s}"

    def tamper_signature(t: str) -> str:
        h, p, s = t.split(".")
        return f"{h}.{p}.{('B' if s[0] == 'A' else 'A') + s[1:]}"

    cases = []

    def case(name, tok, keys, expect, py_key=None, forward=None):
        entry = {"name": name, "token": tok, "keys": keys, "expect": expect}
        if forward:
            entry["forward"] = forward
        if py_key is not None:
            entry["pyjwt"] = pyjwt_outcome(tok, py_key)
            if (entry["pyjwt"] == "ok") != (expect == "ok"):
                sys.exit(f"PyJWT disagrees on {name}: it says {entry['pyjwt']}, we expect {expect}")
        cases.append(entry)

    forward = {"sub": "alice", "realm_access.roles": "reader,writer"}
    for alg in ALGS:
        case(f"{alg}_valid_jwks", token(alg), "jwks", "ok", verifying[alg], forward)
    case("HS256_valid_secret", token("HS256", kid=None), "hs", "ok", secret, forward)
    for alg, source in pem_source.items():
        # A PEM key has no kid; the token's kid falls back to it.
        case(f"{alg}_valid_pem", token(alg), source, "ok", verifying[alg], forward)
    case("typ_at_jwt", token("ES256", headers={"typ": "at+jwt"}), "jwks", "ok", verifying["ES256"])

    rsa_pub = verifying["RS256"]
    case("expired", token(exp=now - 2 * LEEWAY), "jwks", "expired", rsa_pub)
    case("expired_within_leeway", token(exp=now - LEEWAY // 2), "jwks", "ok", rsa_pub)
    case("nbf_in_future", token(nbf=now + 2 * LEEWAY), "jwks", "not_yet_valid", rsa_pub)
    case("nbf_within_leeway", token(nbf=now + LEEWAY // 2), "jwks", "ok", rsa_pub)
    case("missing_exp", token(exp=None), "jwks", "missing_claim", rsa_pub)
    case("wrong_iss", token(iss="https://evil.example"), "jwks", "bad_issuer", rsa_pub)
    case("missing_iss", token(iss=None), "jwks", "missing_claim", rsa_pub)
    case("aud_string_match", token(aud=AUDIENCE), "jwks", "ok", rsa_pub)
    case("aud_list_match", token(aud=["other", AUDIENCE]), "jwks", "ok", rsa_pub)
    case("aud_list_mismatch", token(aud=["other", "another"]), "jwks", "bad_audience", rsa_pub)
    case("aud_string_mismatch", token(aud="other"), "jwks", "bad_audience", rsa_pub)
    case("missing_aud", token(aud=None), "jwks", "missing_claim", rsa_pub)

    for alg in ["RS256", "ES256", "EdDSA", "HS256"]:
        good = token(alg)
        case(f"{alg}_tampered_payload", tamper_payload(good), "jwks", "bad_signature", verifying[alg])
        case(f"{alg}_tampered_signature", tamper_signature(good), "jwks", "bad_signature", verifying[alg])
    case("RS256_other_key_same_kid", token(key=other_rsa), "jwks", "bad_signature", rsa_pub)

    none_token = jwt.encode(claims(), None, algorithm="none")
    case("alg_none", none_token, "jwks", "unsupported_alg", rsa_pub)
    rsa_pem = pem(rsa_key)
    forged = hs256_by_hand(rsa_pem, {"alg": "HS256", "typ": "JWT"}, claims())
    case("alg_confusion_hs256_with_rsa_pem", forged, "pem_rsa", "unsupported_alg", rsa_pem)
    forged_kid = hs256_by_hand(rsa_pem, {"alg": "HS256", "kid": "rsa-1"}, claims())
    case("alg_confusion_hs256_with_rsa_kid", forged_kid, "jwks", "unsupported_alg", rsa_pem)
    case("unknown_kid", token(kid="rotated-2"), "jwks", "unknown_kid")
    case("kid_of_another_alg", token("ES256", kid="rsa-1"), "jwks", "unsupported_alg")

    vectors = {
        "now": now,
        "validator": {
            "algorithms": ALGS,
            "issuers": [ISSUER],
            "audiences": [AUDIENCE],
            "leeway_secs": LEEWAY,
        },
        "hs_secret": b64(secret),
        "pyjwt_version": jwt.__version__,
        "cases": cases,
    }
    with open(os.path.join(out, "vectors.json"), "w") as f:
        json.dump(vectors, f, indent=1)


def pyjwt_outcome(tok: str, key) -> str:
    """What PyJWT says about a token, with the validator's options."""
    try:
        jwt.decode(
            tok,
            key,
            algorithms=ALGS,
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=LEEWAY,
            options={"require": ["exp", "iss", "aud"]},
        )
        return "ok"
    except Exception as e:  # noqa: BLE001 - any refusal counts as one
        return type(e).__name__


if __name__ == "__main__":
    main()
