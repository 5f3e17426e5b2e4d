"""The generated Python client, used for real against a running ingest-api.

    use_client.py PACKAGE_DIR

Environment: API_URL (the public port), SIGNING_KEY (`id:secret`, a key the API accepts),
GC_PRODUCT (an open sale with stock to spare, no per-user cap and a payment window),
GC_SCARCE (an open sale of 2 units, at most 1 per user), GC_RUN (a unique suffix for user
ids and idempotency keys). Every request goes through the generated functions; the
signed ones are signed by signing_hook.order_signer, passed to the generated Client
through `httpx_args`. Each answer must parse into the generated model of its status:

- place an order (202 OrderStatus, `Location`), replay it under the same key (the same
  body byte for byte, `Idempotent-Replayed: true`), read it (200 OrderStatus), cancel it
  (200 OrderEnded `cancelled`, signed over the cancel's path) and read it again;
- the same order signed with a wrong secret: 401 TokenUnauthorizedProblem
  `INVALID_SIGNATURE` (`POST /order`'s 401 also carries the room's token codes);
- on the scarce sale: a user's second order is 409 OrderConflictProblem
  `PURCHASE_LIMIT_REACHED`; once the two units are taken, 409 OrderConflictProblem
  `SOLD_OUT`.

Prints a line per step; exits 1 at the first answer that is not as expected.
"""

from __future__ import annotations

import datetime
import importlib
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signing_hook import order_signer  # noqa: E402  (puts loadtest/contract on sys.path)
from request_signing import parse_signing_key  # noqa: E402

package_dir = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.dirname(package_dir))
package = os.path.basename(package_dir)
gen = importlib.import_module(package)
models = importlib.import_module(f"{package}.models")
place_order = importlib.import_module(f"{package}.api.orders.place_order")
get_order = importlib.import_module(f"{package}.api.orders.get_order")
cancel_order = importlib.import_module(f"{package}.api.reservations.cancel_order")

URL = os.environ["API_URL"]
KEY_ID, SECRET = parse_signing_key(os.environ["SIGNING_KEY"])
PRODUCT, SCARCE, RUN = os.environ["GC_PRODUCT"], os.environ["GC_SCARCE"], os.environ["GC_RUN"]

# raise_on_unexpected_status: an undocumented status raises instead of parsing to None.
signed = gen.Client(
    base_url=URL,
    raise_on_unexpected_status=True,
    httpx_args={"event_hooks": {"request": [order_signer(KEY_ID, SECRET)]}},
)
wrongly_signed = gen.Client(
    base_url=URL,
    raise_on_unexpected_status=True,
    httpx_args={"event_hooks": {"request": [order_signer(KEY_ID, b"not-the-secret")]}},
)
steps = 0


def fail(message: str) -> None:
    print(f"generated client: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def expect(what: str, response: Any, status: int, model: type, code: str | None = None) -> Any:
    """The parsed answer, after checking its status, its generated model class and, for a
    problem, that `code` is the model's own code enum member of that value."""
    global steps
    parsed = response.parsed
    seen = f"{response.status_code} {type(parsed).__name__}"
    if response.status_code != status or type(parsed) is not model:
        fail(f"{what}: expected {status} {model.__name__}, got {seen}: {response.content[:300]!r}")
    if code is not None:
        code_enum = getattr(models, f"{model.__name__}Code")
        if not isinstance(parsed.code, code_enum) or parsed.code.value != code:
            fail(f"{what}: expected code {code_enum.__name__}.{code}, got {parsed.code!r}")
        if parsed.status.value != status:
            fail(f"{what}: the body's status is {parsed.status!r}, not {status}")
    steps += 1
    print(f"  {what}: {seen}" + (f" {parsed.code.value}" if code else ""))
    return parsed


def place(client: Any, product: str, user: str, key: str) -> Any:
    return place_order.sync_detailed(
        client=client,
        body=models.OrderRequest(product_id=product, user_id=user, quantity=1),
        idempotency_key=key,
    )


started = time.monotonic()
user, key = f"gc-{RUN}-buyer", f"gc-{RUN}-first-order"
first = place(signed, PRODUCT, user, key)
order = expect("place an order", first, 202, models.OrderStatus)
if order.status != models.OrderStatusStatus.ACCEPTED or order.state != models.ReservationState.RESERVED:
    fail(f"place an order: status {order.status!r}, state {order.state!r}")
if not isinstance(order.payment_deadline, datetime.datetime):
    fail(f"place an order: paymentDeadline {order.payment_deadline!r} on a sale with a payment window")
if first.headers.get("location") != f"/order/{order.order_id}":
    fail(f"place an order: Location {first.headers.get('location')!r}")
if "idempotent-replayed" in first.headers:
    fail("place an order: the first answer says Idempotent-Replayed")

replay = place(signed, PRODUCT, user, key)
again = expect("replay it (same key)", replay, 202, models.OrderStatus)
if replay.headers.get("idempotent-replayed") != "true":
    fail(f"replay: Idempotent-Replayed {replay.headers.get('idempotent-replayed')!r}")
if replay.content != first.content or again.order_id != order.order_id:
    fail(f"replay: a different body: {replay.content!r} vs {first.content!r}")

read = expect("read it", get_order.sync_detailed(str(order.order_id), client=signed), 200, models.OrderStatus)
if (read.order_id, read.product_id, read.user_id, read.state) != (
    order.order_id, PRODUCT, user, models.ReservationState.RESERVED
):
    fail(f"read it: {read.to_dict()}")

cancelled = cancel_order.sync_detailed(
    str(order.order_id), client=signed, body=models.CancelRequest(user_id=user), idempotency_key=f"gc-{RUN}-cancel"
)
ended = expect("cancel it", cancelled, 200, models.OrderEnded)
if (ended.order_id, ended.state) != (order.order_id, models.ReservationState.CANCELLED):
    fail(f"cancel it: {ended.to_dict()}")
read = expect("read it again", get_order.sync_detailed(str(order.order_id), client=signed), 200, models.OrderStatus)
if read.state != models.ReservationState.CANCELLED:
    fail(f"read it again: state {read.state!r}, not cancelled")

expect(
    "the same order, wrongly signed",
    place(wrongly_signed, PRODUCT, user, f"gc-{RUN}-wrongly-signed"),
    401,
    models.TokenUnauthorizedProblem,
    "INVALID_SIGNATURE",
)

# The scarce sale, in order: (step, user, its answer, the model, the problem's code).
for what, buyer, status, model, code in (
    ("scarce sale, first user", "a", 202, models.OrderStatus, None),
    ("scarce sale, first user again (cap 1)", "a", 409, models.OrderConflictProblem, "PURCHASE_LIMIT_REACHED"),
    ("scarce sale, second user (last unit)", "b", 202, models.OrderStatus, None),
    ("scarce sale, third user", "c", 409, models.OrderConflictProblem, "SOLD_OUT"),
):
    expect(what, place(signed, SCARCE, f"gc-{RUN}-{buyer}", f"gc-{RUN}-{buyer}-{steps}"), status, model, code)
print(f"generated client: PASS: {steps} answers, each parsed into its generated model; {time.monotonic() - started:.1f}s")
