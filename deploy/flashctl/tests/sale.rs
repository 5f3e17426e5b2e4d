//! `flashctl sale open|status` against real Redis and PostgreSQL.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

use flashctl::OpsError;
use flashctl::sale::{self, NewSale, OpenOutcome};
use stores::records::sale::field as sale_field;
use testkit::TestStack;

fn new_sale(product: &str, stock: u32) -> NewSale {
    NewSale {
        product: product.parse().expect("valid"),
        stock,
        per_user: 2,
        starts_at: None,
        ends_at: None,
        limits: flashctl::guard::Limits::defaults(),
        payment_window: None,
        shards: 1,
    }
}

#[tokio::test]
async fn open_is_idempotent_and_status_agrees_with_postgres() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let pg = stack.pg().await?;
    let mut redis = stack.redis().await?;
    let s = new_sale("speaker", 40);

    assert_eq!(
        sale::open(&pg, &mut redis, &stack.keys, &s).await?,
        OpenOutcome::Created
    );
    assert_eq!(
        sale::open(&pg, &mut redis, &stack.keys, &s).await?,
        OpenOutcome::AlreadyOpen
    );
    let conflict = sale::open(&pg, &mut redis, &stack.keys, &new_sale("speaker", 41)).await;
    assert!(
        matches!(conflict, Err(OpsError::Conflict(_))),
        "{conflict:?}"
    );

    // Simulate three persisted units and one taken but in transit.
    pg.batch_execute("UPDATE sales SET sold = 3 WHERE product_id = 'speaker'")
        .await?;
    redis::cmd("HINCRBY")
        .arg(stack.keys.sale(&s.product).sale())
        .arg(sale_field::REMAINING)
        .arg(-4)
        .exec_async(&mut redis)
        .await?;
    let st = sale::status(&pg, &mut redis, &stack.keys, &s.product).await?;
    let row = pg
        .query_one(
            "SELECT stock, sold FROM sales WHERE product_id = 'speaker'",
            &[],
        )
        .await?;
    assert_eq!(st.stock, i64::from(row.get::<_, i32>(0)));
    assert_eq!(st.persisted, i64::from(row.get::<_, i32>(1)));
    assert_eq!(st.state, "open");
    assert_eq!(st.per_user, 2);
    assert_eq!(st.redis_remaining, Some(36));
    assert_eq!(st.taken, Some(4));
    assert_eq!(st.in_transit, Some(1));
    assert_eq!(st.pending_handoff, 0);

    let missing = sale::status(&pg, &mut redis, &stack.keys, &"nothing".parse()?).await;
    assert!(matches!(missing, Err(OpsError::NotFound(_))));
    Ok(())
}

#[tokio::test]
async fn open_refuses_to_paper_over_lost_redis_state() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let pg = stack.pg().await?;
    let mut redis = stack.redis().await?;
    let s = new_sale("lamp", 10);
    sale::open(&pg, &mut redis, &stack.keys, &s).await?;
    pg.batch_execute("UPDATE sales SET sold = 5 WHERE product_id = 'lamp'")
        .await?;
    redis::cmd("DEL")
        .arg(stack.keys.sale(&s.product).sale())
        .exec_async(&mut redis)
        .await?;
    let again = sale::open(&pg, &mut redis, &stack.keys, &s).await;
    assert!(
        matches!(&again, Err(OpsError::Conflict(m)) if m.contains("recover")),
        "{again:?}"
    );
    let st = sale::status(&pg, &mut redis, &stack.keys, &s.product).await?;
    assert_eq!(st.state, "missing");
    Ok(())
}

#[tokio::test]
async fn open_refuses_a_payment_window_past_30_days() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let pg = stack.pg().await?;
    let mut redis = stack.redis().await?;
    let day = std::time::Duration::from_secs(24 * 3600);
    let mut s = new_sale("sofa", 10);
    s.payment_window = Some(day * 31);
    let refused = sale::open(&pg, &mut redis, &stack.keys, &s).await;
    assert!(
        matches!(&refused, Err(OpsError::Invalid(m)) if m.contains("30 days")),
        "{refused:?}"
    );
    s.payment_window = Some(day * 30);
    sale::open(&pg, &mut redis, &stack.keys, &s).await?;
    Ok(())
}
