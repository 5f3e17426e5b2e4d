"""Schemathesis hooks of loadtest/contract.sh: sign what the fuzzer sends.

Loaded with SCHEMATHESIS_HOOKS=<this file>. With CONTRACT_SIGN=1 (the default) every
request of a signed operation gets valid credentials, so the fuzzer reaches past the
signature check (ingest-api/openapi.yaml, `components.securitySchemes`):

- `POST /order`, `POST /order/{orderId}/cancel`, `POST /queue/{productId}/join` and
  `POST /queue/{productId}/claim`: `X-Key-Id`, `X-Request-Time` (now, ms)
  and `X-Signature: v1=<hex HMAC-SHA256>` of
  `v1:POST:{path as sent}:{X-Request-Time}:{Idempotency-Key without quotes}:{raw body}`,
  keyed by SIGNING_KEY (`id:secret`). A missing or malformed `Idempotency-Key` stays as
  generated (the 400 paths are still fuzzed) and is signed as sent.
- `POST /webhooks/payment` (Standard Webhooks): `webhook-id` (the generated one, or a new
  one), `webhook-timestamp` (now, s) and `webhook-signature: v1,<base64 HMAC-SHA256>` of
  `{id}.{timestamp}.{raw body}`, keyed by the base64-decoded part of
  PAYMENT_WEBHOOK_SECRET (`whsec_…`).

Both signatures are computed by request_signing.py beside this file (shared with the
generated-client check, loadtest/generated-client.sh).

A header the case mutates or leaves out on purpose (a negative case, a "missing required
header" case) stays as generated, and the signature is computed over what is sent.

The signed bytes are the bytes sent: the hook serializes a JSON body itself (compact, UTF-8)
and hands schemathesis the raw bytes (`data=`), and the final signature is computed by a
`requests` auth callable on the prepared request, i.e. over its exact path and body.
Cases in which schemathesis negates the security parameter on purpose (to see a 401) are
left unsigned. The signing headers are set on the case itself, so schemathesis's checks see
the values sent, and the case is marked as carrying explicit credentials (`_has_explicit_auth`,
the flag schemathesis's own auth providers set; the version is pinned), so its
`ignored_auth` check probes unsigned and wrongly signed copies of signed requests (they must
be refused) instead of taking our valid signature for a generated one that was accepted.

With CONTRACT_SIGN=0 requests go out exactly as generated (the unsigned pass).

CONTRACT_PRODUCT (signed pass): a product with an open sale; about half of the generated
valid `productId`s of `POST /order` are replaced by it, so orders get accepted (202); about
half of the generated valid `orderId`s of the payment webhook are replaced by orders
accepted earlier in the run, so it answers about real orders (200 paid, 409 not reserved).
CONTRACT_ROOM_PRODUCT (signed pass): a product whose sale has an open waiting room; about
half of the generated valid `productId`s of the `/queue` operations are replaced by it, so
joins get tickets (200). About half of the status polls and claims then carry a ticket
issued earlier in the run (eight joins of the hooks' own at the first poll or claim
— CONTRACT_BASE_URL, the API — and the generated joins answered 200), with the device fingerprint it is bound to (and, on a claim,
its user), so they reach the room's answers past the ticket check.
Only values valid already are replaced, so a case stays as valid or invalid as generated.

CONTRACT_STATS: a file that receives, at exit, the number of requests per operation and
status (JSON), for the script's summary line, and the requests signed in full that the API
answered 401 `INVALID_SIGNATURE` or `REQUEST_EXPIRED` all the same (a disagreement between these hooks and the API's signing, which
the script counts as a failure: the signed pass would test nothing past the check).
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import re
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlsplit

import requests.auth
import schemathesis
from schemathesis.core import NotSet
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import CoverageScenario, negated_parameters

# The signatures themselves: request_signing.py beside this file (schemathesis loads this
# file by path, so its folder is not on sys.path by itself).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from request_signing import order_signature, parse_signing_key, unquote_key, webhook_signature  # noqa: E402

SIGN = os.environ.get("CONTRACT_SIGN", "1") != "0"
PRODUCT = os.environ.get("CONTRACT_PRODUCT", "")
STATS_PATH = os.environ.get("CONTRACT_STATS", "")
# Schemathesis runs cases on worker threads (`--workers`); this guards the shared state.
_lock = threading.Lock()

JOIN = ("POST", "/queue/{productId}/join")
CLAIM = ("POST", "/queue/{productId}/claim")
STATUS = ("GET", "/queue/{productId}/status")
ORDER_SIGNED = {("POST", "/order"), ("POST", "/order/{orderId}/cancel"), JOIN, CLAIM}
ROOM_PRODUCT = os.environ.get("CONTRACT_ROOM_PRODUCT", "")
BASE_URL = os.environ.get("CONTRACT_BASE_URL", "")
# The refusals of the signature check itself (a validly signed request must not get them).
SIGNATURE_CODES = {"INVALID_SIGNATURE", "REQUEST_EXPIRED"}
WEBHOOK = ("POST", "/webhooks/payment")
ID_PATTERN = re.compile(r"^[a-z0-9-]{1,50}$")


def _signing_key() -> tuple[str, bytes]:
    try:
        return parse_signing_key(os.environ.get("SIGNING_KEY", ""))
    except ValueError:
        raise RuntimeError("SIGNING_KEY must be `id:secret` (or set CONTRACT_SIGN=0)") from None


def _webhook_key() -> bytes:
    raw = os.environ.get("PAYMENT_WEBHOOK_SECRET", "")
    if not raw.startswith("whsec_"):
        raise RuntimeError("PAYMENT_WEBHOOK_SECRET must be `whsec_<base64>` (or set CONTRACT_SIGN=0)")
    return base64.b64decode(raw[len("whsec_") :], validate=True)


if SIGN:
    KEY_ID, SECRET = _signing_key()
    WEBHOOK_KEY = _webhook_key()


def _readable(value: str) -> bool:
    """Whether the API can read this header value (actix `to_str`: visible ASCII and tab)."""
    return all(c == "\t" or " " <= c <= "~" for c in value)


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _header(headers: Any, name: str) -> str | None:
    """A header as the API reads it: without the surrounding spaces and tabs (not part of a
    field value, RFC 9110), and None when absent or unreadable (as `header()` in the API)."""
    for key, value in headers.items():
        if key.lower() == name.lower():
            text = _text(value).strip(" \t")
            return text if _readable(text) else None
    return None


def _unquoted_key(headers: Any) -> str:
    """The idempotency key as the API signs it: `Idempotency-Key`, else its alias, trimmed,
    one pair of surrounding double quotes removed; empty when neither is sent."""
    raw = _header(headers, "Idempotency-Key")
    if raw is None:
        raw = _header(headers, "X-Idempotency-Key")
    return unquote_key(raw or "")


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        try:
            return body.encode("utf-8")
        except UnicodeEncodeError:
            return body.encode("latin-1", errors="replace")
    return bytes(body)


def _serialize_json(value: Any) -> bytes | None:
    """The bytes of a generated JSON body, compact; None to leave it to schemathesis."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: escape them instead
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


class _OrderSigner(requests.auth.AuthBase):
    """Signs the prepared request: its exact path, headers and body bytes."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        path = urlsplit(r.url).path or "/"
        request_time = _header(r.headers, "X-Request-Time") or ""
        r.headers["X-Signature"] = order_signature(
            SECRET, path, request_time, _unquoted_key(r.headers), _body_bytes(r.body)
        )
        return r


class _WebhookSigner(requests.auth.AuthBase):
    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        message_id = _header(r.headers, "webhook-id") or ""
        timestamp = _header(r.headers, "webhook-timestamp") or ""
        r.headers["webhook-signature"] = webhook_signature(WEBHOOK_KEY, message_id, timestamp, _body_bytes(r.body))
        return r


def _is_json(media_type: str | None) -> bool:
    if not media_type:
        return False
    main = media_type.split(";")[0].strip().lower()
    return main == "application/json" or main.endswith("+json")


def _left_alone(meta: Any) -> set[str]:
    """Headers a case mutates or leaves out on purpose (lowercase): kept as generated."""
    names: set[str] = set()
    if meta is None:
        return names
    for name, location in negated_parameters(meta):
        if location == ParameterLocation.HEADER and name:
            names.add(name.lower())
    data = meta.phase.data
    if (
        getattr(data, "scenario", None) == CoverageScenario.MISSING_PARAMETER
        and getattr(data, "parameter_location", None) == ParameterLocation.HEADER
        and getattr(data, "parameter", None)
    ):
        names.add(data.parameter.lower())
    return names


_turns: Counter[str] = Counter()


def _every_other(name: str) -> bool:
    """True on every second call per name: half the eligible cases are pinned (the
    generator repeats its favourite values, so the choice must not depend on them)."""
    with _lock:
        _turns[name] += 1
        return _turns[name] % 2 == 1


def _pin_product(case: Any) -> None:
    body = case.body
    if not (PRODUCT and isinstance(body, dict)):
        return
    product = body.get("productId")
    if isinstance(product, str) and ID_PATTERN.match(product) and _every_other("product"):
        body["productId"] = PRODUCT


def _pin_room(case: Any) -> None:
    params = case.path_parameters
    if not (ROOM_PRODUCT and isinstance(params, dict)):
        return
    product = params.get("productId")
    if isinstance(product, str) and ID_PATTERN.match(product) and _every_other("room"):
        params["productId"] = ROOM_PRODUCT


# Tickets issued during the run (signed pass): (ticket, fingerprint, user) of each join
# answered 200; status polls and claims are pointed at them.
_tickets: list[tuple[str, str, str]] = []
_seeded = False


def _seed_tickets() -> None:
    """A few joins of our own, once, before the first poll or claim: the generator may
    reach those operations before its joins got a ticket."""
    global _seeded
    with _lock:
        if _seeded or not BASE_URL:
            return
        _seeded = True
    for n in range(8):
        user, fingerprint = f"contract-waiter-{n}", f"contract-device-{n}"
        body = json.dumps({"userId": user}, separators=(",", ":")).encode()
        path, now, key = f"/queue/{ROOM_PRODUCT}/join", str(time.time_ns() // 1_000_000), uuid.uuid4().hex
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "X-Key-Id": KEY_ID,
            "X-Request-Time": now,
            "X-Signature": order_signature(SECRET, path, now, key, body),
            "X-Device-Fingerprint": fingerprint,
        }
        answer = requests.post(BASE_URL + path, data=body, headers=headers, timeout=10)
        if answer.status_code != 200:
            raise RuntimeError(f"seeding a ticket: {answer.status_code} {answer.text[:200]}")
        with _lock:
            _tickets.append((answer.json()["ticket"], fingerprint, user))


def _pin_ticket(case: Any, left_alone: set[str]) -> None:
    headers = case.headers
    if not (_tickets and isinstance(headers, MutableMapping)) or _header(headers, "X-Queue-Ticket") is None:
        return
    if {"x-queue-ticket", "x-device-fingerprint"} & left_alone or not _every_other("ticket"):
        return
    with _lock:
        ticket, fingerprint, user = _tickets[_turns["ticket"] // 2 % len(_tickets)]
    for name in [k for k in headers if k.lower() in ("x-queue-ticket", "x-device-fingerprint")]:
        del headers[name]
    headers["X-Queue-Ticket"] = ticket
    headers["X-Device-Fingerprint"] = fingerprint
    product = case.path_parameters.get("productId")
    if isinstance(product, str) and ID_PATTERN.match(product):
        case.path_parameters["productId"] = ROOM_PRODUCT
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("userId"), str) and ID_PATTERN.match(body["userId"]):
        body["userId"] = user


# Orders accepted during the run (signed pass): payment webhooks are pointed at them.
_accepted: list[str] = []
UUID_PATTERN = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _pin_order(case: Any) -> None:
    body = case.body
    if not (_accepted and isinstance(body, dict)):
        return
    order_id = body.get("orderId")
    if isinstance(order_id, str) and UUID_PATTERN.match(order_id) and _every_other("order"):
        with _lock:
            body["orderId"] = _accepted[_turns["order"] // 2 % len(_accepted)]


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if not SIGN:
        return
    with _lock:
        _signed.discard(id(case))  # an id left by a case that never got an answer
    operation = case.operation
    # The method sent: a probe with a method the operation does not take is not signed.
    key = (case.method.upper(), operation.path)
    if key in (JOIN, CLAIM, STATUS):
        _pin_room(case)
    if key in (CLAIM, STATUS) and ROOM_PRODUCT:
        _seed_tickets()
        _pin_ticket(case, _left_alone(case.meta))
    if key not in ORDER_SIGNED and key != WEBHOOK:
        return
    # Read before any change: schemathesis revalidates the case after the hook.
    negated = operation.schema.is_security_param_negated(case)
    left_alone = _left_alone(case.meta)
    if key == ("POST", "/order"):
        _pin_product(case)
    elif key == WEBHOOK:
        _pin_order(case)

    body = b""
    if not isinstance(case.body, NotSet):
        if isinstance(case.body, bytes):
            body = case.body
        elif _is_json(case.media_type):
            serialized = _serialize_json(case.body)
            if serialized is not None:
                kwargs["data"] = body = serialized
    if negated:
        return

    if case.headers is None:
        case.headers = {}
    headers = case.headers

    def put(name: str, value: str) -> None:
        if name.lower() not in left_alone:
            headers[name] = value

    if key in ORDER_SIGNED:
        put("X-Key-Id", KEY_ID)
        put("X-Request-Time", str(time.time_ns() // 1_000_000))
        # The path and body as schemathesis will most likely send them; _OrderSigner
        # recomputes it over the prepared request, which is what counts.
        headers["X-Signature"] = order_signature(
            SECRET, case.formatted_path, _header(headers, "X-Request-Time") or "", _unquoted_key(headers), body
        )
        kwargs["auth"] = _OrderSigner()
    else:
        if not any(k.lower() == "webhook-id" for k in headers):
            put("webhook-id", f"msg_{uuid.uuid4().hex}")
        put("webhook-timestamp", str(int(time.time())))
        headers["webhook-signature"] = webhook_signature(
            WEBHOOK_KEY, _header(headers, "webhook-id") or "", _header(headers, "webhook-timestamp") or "", body
        )
        kwargs["auth"] = _WebhookSigner()
    # The credentials are ours, not generated: schemathesis's `ignored_auth` then checks
    # that unsigned and wrongly signed copies are refused (as it does for `--auth`).
    case._has_explicit_auth = True
    # Fully signed (no signing header kept as generated): a 401 to it means these hooks
    # sign differently from the API, and the pass would test nothing past the check.
    needed = ("x-key-id", "x-request-time") if key in ORDER_SIGNED else ("webhook-id", "webhook-timestamp")
    if not left_alone.intersection(needed) and all(_header(headers, n) is not None for n in needed):
        with _lock:
            _signed.add(id(case))


_statuses: Counter[tuple[str, int]] = Counter()
# Cases signed in full (by id, until answered) and the ones the API refused all the same.
_signed: set[int] = set()
_refused: list[str] = []


def _json(response: Any) -> dict[str, Any]:
    try:
        answer = response.json()
    except Exception:  # noqa: BLE001 - a malformed answer is the checks' business
        return {}
    return answer if isinstance(answer, dict) else {}


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    key = (case.method.upper(), case.operation.path)
    accepted = ticket = None
    if SIGN and response.status_code == 202 and key == ("POST", "/order"):
        accepted = _json(response).get("orderId")
    if SIGN and response.status_code == 200 and key == JOIN and isinstance(case.body, dict):
        issued = _json(response).get("ticket")
        fingerprint = _header(case.headers or {}, "X-Device-Fingerprint")
        if isinstance(issued, str) and fingerprint is not None:
            ticket = (issued, fingerprint, str(case.body.get("userId")))
    with _lock:
        _statuses[(f"{key[0]} {key[1]}", response.status_code)] += 1
        if isinstance(accepted, str) and accepted not in _accepted:
            _accepted.append(accepted)
        if ticket is not None and len(_tickets) < 1000:
            _tickets.append(ticket)
        if id(case) in _signed:
            _signed.discard(id(case))
            if response.status_code == 401 and _json(response).get("code") in SIGNATURE_CODES:
                _refused.append(f"{case.method.upper()} {response.request.url}: {response.text[:200]}")


def _write_stats() -> None:
    if not STATS_PATH:
        return
    per_operation: dict[str, dict[str, int]] = {}
    for (operation, status), count in sorted(_statuses.items()):
        per_operation.setdefault(operation, {})[str(status)] = count
    with open(STATS_PATH, "w") as f:
        json.dump(
            {
                "requests": sum(_statuses.values()),
                "per_operation": per_operation,
                "signed_but_refused": len(_refused),
                "signed_but_refused_examples": _refused[:10],
            },
            f,
            indent=1,
        )


atexit.register(_write_stats)
