-- Every change an operator makes with flashctl: who, when, what, and how it ended.
CREATE TABLE ops_audit (
    id         bigserial   PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    operator   text        NOT NULL,
    command    text        NOT NULL,
    arguments  jsonb       NOT NULL,
    outcome    text        NOT NULL,
    detail     text
);

CREATE INDEX ops_audit_by_time ON ops_audit (at);

-- Suspicious-order queries group by device and network pseudonyms.
CREATE INDEX orders_by_device ON orders (product_id, device_hash) WHERE device_hash IS NOT NULL;
CREATE INDEX orders_by_network ON orders (product_id, ip_hash) WHERE ip_hash IS NOT NULL;
