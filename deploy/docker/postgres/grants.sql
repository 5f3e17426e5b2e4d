-- Least privilege, applied after migrations (the migrate job runs it as the owner).
--   flashsale_worker  writes orders and dead letters, may change only sales.sold and
--                     an order's state (a reservation ending)
--   flashsale_ops     flashctl: reads everything, opens sales, erases users, audits
-- The API has no PostgreSQL access at all.
GRANT USAGE ON SCHEMA public TO flashsale_worker, flashsale_ops;

GRANT SELECT, INSERT, UPDATE (state, state_at, state_reason) ON orders TO flashsale_worker;
GRANT SELECT, UPDATE (sold) ON sales TO flashsale_worker;
GRANT SELECT, INSERT ON rejected_orders TO flashsale_worker;
GRANT USAGE ON SEQUENCE rejected_orders_id_seq TO flashsale_worker;
GRANT SELECT ON refinery_schema_history TO flashsale_worker;

GRANT SELECT ON ALL TABLES IN SCHEMA public TO flashsale_ops;
GRANT INSERT, UPDATE (stock, per_user_limit, starts_at, ends_at, payment_window_ms) ON sales TO flashsale_ops;
GRANT UPDATE (user_id, idempotency_key, ip_hash, device_hash) ON orders TO flashsale_ops;
GRANT UPDATE (payload) ON rejected_orders TO flashsale_ops;
GRANT INSERT, UPDATE (arguments) ON ops_audit TO flashsale_ops;
GRANT USAGE ON SEQUENCE ops_audit_id_seq TO flashsale_ops;
