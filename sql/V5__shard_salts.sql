-- Where a sharded sale's shards are (`flashctl sale open --shards N`): placement's salt
-- of each shard, by index, as the product's hash in Redis records it. `sale recover`
-- reads it to make sure none of the earlier shards still holds units or accepted orders
-- before it places the shards again; NULL for an unsharded sale.

ALTER TABLE sales
    ADD COLUMN shard_salts integer[];
