-- Reservations that end (lua/transition.lua decides, the worker applies): an order is
-- `reserved` from its acceptance until exactly one of `paid`, `cancelled` or `expired`.
-- `sales.sold` counts the units of reserved and paid orders, so a cancellation or an
-- expiry lowers it by the order's units, once: only a `reserved` row ever moves.

ALTER TABLE orders
    ADD COLUMN state        text NOT NULL DEFAULT 'reserved'
        CHECK (state IN ('reserved', 'paid', 'cancelled', 'expired')),
    -- When Redis decided the transition (its server time); NULL while reserved.
    ADD COLUMN state_at     timestamptz,
    -- Who or what moved it: payment, shopper, expiry, or an operator's words.
    ADD COLUMN state_reason text;

-- The sale's payment window (0 = reservations never expire), kept so `flashctl sale
-- recover` can rebuild the sale as it was opened.
ALTER TABLE sales
    ADD COLUMN payment_window_ms bigint NOT NULL DEFAULT 0 CHECK (payment_window_ms >= 0);
