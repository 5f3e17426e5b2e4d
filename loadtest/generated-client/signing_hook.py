"""Signs the generated client's requests: an httpx request event hook.

    from signing_hook import order_signer
    client = Client(base_url=..., httpx_args={"event_hooks": {"request": [order_signer(key_id, secret)]}})

httpx calls a request hook once the request is built (URL, headers, body bytes) and before
it is sent, so the hook signs exactly what goes out. For a `POST` to `/order`,
`/order/{orderId}/cancel`, `/queue/{productId}/join` or `/queue/{productId}/claim` (the
operations with the `orderSignature` security scheme) it
sets `X-Key-Id` and `X-Request-Time` (now, in ms) unless the caller set them, then
`X-Signature: v1=<hex HMAC-SHA256>` over the canonical string
`v1:POST:{path}:{X-Request-Time}:{Idempotency-Key without quotes}:{raw body}` — the path
as sent (without a query), the body bytes as sent. The signature itself is
loadtest/contract/request_signing.py, the module schemathesis's hooks sign with too.
Other requests pass unchanged.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable

import httpx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "contract"))
from request_signing import order_signature, unquote_key  # noqa: E402

SIGNED_PATH = re.compile(r"^(/order(/[^/]+/cancel)?|/queue/[^/]+/(join|claim))$")


def order_signer(key_id: str, secret: bytes) -> Callable[[httpx.Request], None]:
    """A request hook signing the signed operations with key `key_id` (its `secret`)."""

    def sign(request: httpx.Request) -> None:
        path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
        if request.method != "POST" or not SIGNED_PATH.match(path):
            return
        headers = request.headers
        headers.setdefault("X-Key-Id", key_id)
        headers.setdefault("X-Request-Time", str(time.time_ns() // 1_000_000))
        key = headers.get("Idempotency-Key", headers.get("X-Idempotency-Key", ""))
        headers["X-Signature"] = order_signature(
            secret, path, headers["X-Request-Time"], unquote_key(key), request.read()
        )

    return sign
