"""ingest-api's request signatures, in one place for the Python tooling.

Used by loadtest/contract/hooks.py (schemathesis signs what it fuzzes) and by
loadtest/generated-client/signing_hook.py (the httpx hook of the generated client). The
rules are those of ingest-api/API.md ("Signing") and openapi.yaml's security schemes;
the Rust side is `shared::auth::signing`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def order_signature(secret: bytes, path: str, request_time: str, idempotency_key: str, body: bytes) -> str:
    """`X-Signature` of a signed `POST` (`/order`, `/order/{orderId}/cancel`,
    `/queue/{productId}/join`, `/queue/{productId}/claim`): `v1=` and the
    lowercase hex HMAC-SHA256, keyed by `secret`, of
    `v1:POST:{path}:{X-Request-Time}:{Idempotency-Key without quotes}:{raw body}`."""
    canonical = f"v1:POST:{path}:{request_time}:{idempotency_key}:".encode() + body
    return "v1=" + hmac.new(secret, canonical, hashlib.sha256).hexdigest()


def webhook_signature(key: bytes, message_id: str, timestamp: str, body: bytes) -> str:
    """`webhook-signature` of a payment webhook (Standard Webhooks, one `v1` signature)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def unquote_key(raw: str) -> str:
    """An `Idempotency-Key` value as the API signs it: trimmed, one pair of surrounding
    double quotes removed."""
    raw = raw.strip()
    if len(raw) >= 2 and raw.startswith('"') and raw.endswith('"'):
        return raw[1:-1]
    return raw


def parse_signing_key(raw: str) -> tuple[str, bytes]:
    """`SIGNING_KEY` (`id:secret`) as (key id, secret bytes); ValueError if malformed."""
    key_id, sep, secret = raw.partition(":")
    if not sep or not key_id or not secret:
        raise ValueError("a signing key is `id:secret`")
    return key_id, secret.encode()


# The test vector of ingest-api/API.md and openapi.yaml: a wrong canonical string here
# would make every signed request a 401 (checked on import, so no caller signs wrongly).
if (
    order_signature(
        b"example-secret",
        "/order",
        "1700000000000",
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        b'{"productId":"iphone-15","userId":"u-1001","quantity":1}',
    )
    != "v1=5fdeb47c4b8aa33cd166d5e38016522fbfb88816e4830353c7f694d01298350c"
):
    raise RuntimeError("request_signing.order_signature does not give the test vector of ingest-api/API.md")
