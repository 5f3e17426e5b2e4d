-- A sharded sale (`flashctl sale open --shards N`): its stock spread over N shards on
-- the Redis Cluster's masters. Kept so `flashctl sale recover` rebuilds the sale with as
-- many shards (placed again on the cluster as it is then), and `sale status` says so.
-- 1 is an unsharded sale.

ALTER TABLE sales
    ADD COLUMN shards integer NOT NULL DEFAULT 1 CHECK (shards BETWEEN 1 AND 64);
