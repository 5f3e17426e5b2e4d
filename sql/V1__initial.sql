-- Sales and orders: the durable record of a flash sale.
--
-- PostgreSQL is the last safety net: `sales.sold` can never exceed `sales.stock`, and an
-- order id can be written once only, so a redelivered Kafka message is a no-op.
-- No column holds a raw IP address.

CREATE TABLE sales (
    product_id     text        PRIMARY KEY CHECK (product_id ~ '^[a-z0-9-]{1,50}$'),
    stock          integer     NOT NULL CHECK (stock >= 0),
    sold           integer     NOT NULL DEFAULT 0 CHECK (sold >= 0),
    per_user_limit integer     NOT NULL DEFAULT 0 CHECK (per_user_limit >= 0),
    starts_at      timestamptz,
    ends_at        timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sold_within_stock CHECK (sold <= stock)
);

CREATE TABLE orders (
    order_id        uuid        PRIMARY KEY,
    product_id      text        NOT NULL REFERENCES sales (product_id),
    user_id         text        NOT NULL,
    quantity        integer     NOT NULL CHECK (quantity BETWEEN 1 AND 10),
    idempotency_key text        NOT NULL,
    accepted_at     timestamptz NOT NULL,
    persisted_at    timestamptz NOT NULL DEFAULT now(),
    -- Keyed hashes (pseudonyms), never the raw values.
    ip_hash         text,
    device_hash     text
);

CREATE INDEX orders_by_product_user ON orders (product_id, user_id);
CREATE INDEX orders_by_product_time ON orders (product_id, accepted_at);

-- Messages the worker could not write (poison): kept with the reason, never dropped.
CREATE TABLE rejected_orders (
    id           bigserial   PRIMARY KEY,
    topic        text        NOT NULL,
    kafka_partition integer  NOT NULL,
    kafka_offset bigint      NOT NULL,
    order_id     uuid,
    product_id   text,
    payload      bytea       NOT NULL,
    reason       text        NOT NULL,
    rejected_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (topic, kafka_partition, kafka_offset)
);
