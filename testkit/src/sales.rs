//! Opening sales on a test's slice of the local stack through the code operators use.

use flashctl::guard::Limits;
use flashctl::sale::{NewSale, open};

use crate::TestStack;

/// Sales on a [`TestStack`].
pub trait SaleStack {
    /// Opens a sale with the default limits (PostgreSQL row, then Redis).
    fn open_sale(
        &self,
        product: &str,
        stock: u32,
        per_user: u32,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Opens a sale with the given limits.
    fn open_sale_with(
        &self,
        product: &str,
        stock: u32,
        per_user: u32,
        limits: Limits,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Opens a sale without rate limits whose orders expire unpaid after `window`
    /// (`None`: never).
    fn open_reserving_sale(
        &self,
        product: &str,
        stock: u32,
        per_user: u32,
        window: Option<std::time::Duration>,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Opens a sale without rate limits spread over `shards` shards (`--shards`).
    fn open_sharded_sale(
        &self,
        product: &str,
        stock: u32,
        per_user: u32,
        shards: u32,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

impl SaleStack for TestStack {
    async fn open_sale(&self, product: &str, stock: u32, per_user: u32) -> anyhow::Result<()> {
        self.open_sale_with(product, stock, per_user, Limits::defaults())
            .await
    }

    async fn open_sale_with(
        &self,
        product: &str,
        stock: u32,
        per_user: u32,
        limits: Limits,
    ) -> anyhow::Result<()> {
        open_new(self, product, stock, per_user, limits, (None, 1)).await
    }

    async fn open_reserving_sale(
        &self,
        product: &str,
        stock: u32,
        per_user: u32,
        window: Option<std::time::Duration>,
    ) -> anyhow::Result<()> {
        open_new(self, product, stock, per_user, Limits::off(), (window, 1)).await
    }

    async fn open_sharded_sale(
        &self,
        product: &str,
        stock: u32,
        per_user: u32,
        shards: u32,
    ) -> anyhow::Result<()> {
        open_new(
            self,
            product,
            stock,
            per_user,
            Limits::off(),
            (None, shards),
        )
        .await
    }
}

async fn open_new(
    stack: &TestStack,
    product: &str,
    stock: u32,
    per_user: u32,
    limits: Limits,
    (payment_window, shards): (Option<std::time::Duration>, u32),
) -> anyhow::Result<()> {
    let pg = stack.pg().await?;
    let mut redis = stack.redis().await?;
    let sale = NewSale {
        product: product.parse()?,
        stock,
        per_user,
        starts_at: None,
        ends_at: None,
        limits,
        payment_window,
        shards,
    };
    open(&pg, &mut redis, &stack.keys, &sale).await?;
    Ok(())
}
