//! The audit of a test's sale (`loadtest::audit`) on its slice of the stack.

use std::time::Duration;

use loadtest::audit::{AuditStack, Expectation, Report, drained_audit};
use shared::ProductId;

use crate::TestStack;

impl AuditStack for TestStack {
    async fn drained_audit(&self, product: &str, expect: &Expectation) -> anyhow::Result<Report> {
        let pg = self.pg().await?;
        let mut redis = self.redis().await?;
        let product: ProductId = product.parse()?;
        drained_audit(
            &pg,
            &mut redis,
            &self.keys,
            &product,
            expect,
            Duration::from_secs(60),
        )
        .await
    }
}
