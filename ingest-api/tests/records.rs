//! Every Redis record round-trips through its writer and its reader
//! (`stores::records`): what a Lua script writes, the Rust type reads back field for
//! field, and what Rust writes (an order's status record, a reservation rebuilt by
//! `flashctl sale recover`), the scripts read. A field name that drifted between a
//! script and its reader fails here.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

use std::time::Duration;

use flashctl::guard::Limits;
use flashctl::sale::{NewSale, open_in_redis};
use ingest_api::order::admission::{Admission, Decision, Ticket};
use ingest_api::order::front_door::{Client, OrderRequest};
use ingest_api::order::handoff::confirm::{self, Confirmation, StatusWrite};
use shared::client::Pseudonymizer;
use shared::keys::Scope;
use shared::sale::SaleState;
use shared::status::OrderState;
use shared::{IdempotencyKey, OrderEvent, ReservationState};
use stores::Replicas;
use stores::records::{
    IdempotencyAnswer, OrderStatusRecord, OutboxEntry, ReservationRecord, SaleRecord, read_hash,
};
use stores::reservations::{Move, Transition, release, transition};
use testkit::TestStack;

#[tokio::test]
async fn each_record_reads_back_what_its_writer_wrote() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let mut conn = stack.redis().await?;
    let product: shared::ProductId = "rec".parse()?;
    let sk = stack.keys.sale(&product);

    // The sale, as lua/sale_open.lua writes it.
    let limits = Limits::defaults();
    let sale = NewSale {
        product: product.clone(),
        stock: 5,
        per_user: 2,
        starts_at: None,
        ends_at: None,
        limits: limits.clone(),
        payment_window: Some(Duration::from_secs(60)),
        shards: 1,
    };
    assert!(open_in_redis(&mut conn, &stack.keys, &sale, 5, SaleState::Open.as_str()).await?);
    let record = SaleRecord::read(&mut conn, &sk).await?.expect("a sale");
    assert_eq!(
        (
            record.state,
            record.stock,
            record.remaining,
            record.per_user
        ),
        (SaleState::Open, 5, 5, 2)
    );
    assert_eq!((record.returning, record.released), (0, 0));
    assert_eq!(record.payment_window_ms, 60_000);
    for (field, value) in limits.fields() {
        let scope = Scope::ALL
            .into_iter()
            .find(|s| field.starts_with(&format!("{}_", s.tag())))
            .expect("a scope's field");
        let stored = record.limit(scope).expect("a limit");
        let read = if field.ends_with("_t") {
            stored.interval_us
        } else {
            stored.burst
        };
        assert_eq!(read, value, "{field}");
    }

    // An admission, as lua/admit.lua writes it: the reservation, the stored answer and
    // the outbox entry.
    let admission = Admission::new(
        conn.clone(),
        stack.keys.clone(),
        3_600,
        true,
        Replicas::new(Some(0), Duration::from_millis(50)),
    );
    let client = Client::new("203.0.113.7".parse()?, Some("dev-1"));
    let order = OrderRequest {
        product_id: product.clone(),
        user_id: "ann".parse()?,
        quantity: shared::Quantity::new(2)?,
    };
    let key = IdempotencyKey::parse("records-0001")?;
    let pseudonyms = client.pseudonyms(&Pseudonymizer::new(b"records-test-key-0123"));
    let ticket = Ticket::new(order, key.clone(), &client, pseudonyms, None);
    let admitted = admission.admit(&ticket).await?;
    let Decision::Take {
        entry_id,
        deadline_ms,
        ..
    } = admitted.decision
    else {
        panic!("accepted expected, got {:?}", admitted.decision);
    };
    assert!(deadline_ms > 0, "the sale has a payment window");
    let order_id = ticket.event.order_id.to_string();
    let reservation = ReservationRecord::read(&mut conn, &sk, &order_id)
        .await?
        .expect("a reservation");
    assert_eq!(
        reservation,
        ReservationRecord {
            user: "ann".into(),
            quantity: 2,
            state: ReservationState::Reserved,
            deadline_ms,
            entry: Some(entry_id.clone()),
            ended: None,
            released: false,
        }
    );
    let idem_key = sk.idempotency("ann", key.as_str());
    let answer = IdempotencyAnswer::from_fields(&read_hash(&mut conn, &idem_key).await?)
        .expect("a stored answer");
    assert_eq!(answer.request_fingerprint, ticket.request_fingerprint());
    assert_eq!((answer.done, answer.status), (false, 202));
    assert_eq!(answer.body, ticket.accepted_body);
    assert_eq!(
        (
            answer.order_id.as_str(),
            answer.entry.as_str(),
            answer.deadline_ms
        ),
        (order_id.as_str(), entry_id.as_str(), deadline_ms)
    );
    let entries = OutboxEntry::read_all(&mut conn, &sk.outbox()).await?;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].id, entry_id);
    assert_eq!(entries[0].order_id.as_deref(), Some(order_id.as_str()));
    let event = OrderEvent::decode(entries[0].event.as_deref().expect("an event").as_bytes())?;
    assert_eq!(event, OrderEvent::Placed(ticket.event.clone()));

    // The confirmation: lua/handoff_done.lua marks the answer done and takes the entry
    // out; Rust writes the status record and reads it back.
    let status_key = stack.keys.order_status(&ticket.event.order_id);
    let written = OrderStatusRecord::of(&ticket.event, OrderState::Accepted);
    let confirmation = Confirmation {
        outbox: sk.outbox(),
        idem: idem_key.clone(),
        entry_id: entry_id.clone(),
        status: Some(StatusWrite {
            key: status_key.clone(),
            record: written.clone(),
        }),
    };
    confirm::write(&mut conn, &[&confirmation], 3_600).await?;
    let answer = IdempotencyAnswer::from_fields(&read_hash(&mut conn, &idem_key).await?)
        .expect("a stored answer");
    assert!(answer.done);
    assert!(
        OutboxEntry::read_all(&mut conn, &sk.outbox())
            .await?
            .is_empty()
    );
    let read = OrderStatusRecord::from_fields(
        ticket.event.order_id,
        &read_hash(&mut conn, &status_key).await?,
    )?;
    assert_eq!(read, Some(written));

    // A cancel, as lua/transition.lua writes it, and the release of lua/release.lua.
    let cancel = Move {
        keys: &sk,
        product: product.as_str(),
        order_id: &order_id,
        to: ReservationState::Cancelled,
        reason: "records",
        retention_secs: 3_600,
    };
    let Transition::Moved { entry_id, .. } = transition(&mut conn, &cancel).await? else {
        panic!("moved expected");
    };
    let ended = ReservationRecord::read(&mut conn, &sk, &order_id)
        .await?
        .expect("a reservation");
    assert_eq!(ended.state, ReservationState::Cancelled);
    assert_eq!(
        ended.ended.as_ref().map(|(_, r)| r.as_str()),
        Some("records")
    );
    assert!(ended.ended.as_ref().is_some_and(|(at, _)| *at > 0));
    let entries = OutboxEntry::read_all(&mut conn, &sk.outbox()).await?;
    assert_eq!(
        entries.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        [entry_id.as_str()]
    );
    let event = OrderEvent::decode(entries[0].event.as_deref().expect("an event").as_bytes())?;
    assert!(matches!(event, OrderEvent::Transitioned(t) if t.state == ReservationState::Cancelled));
    let sale = SaleRecord::read(&mut conn, &sk).await?.expect("a sale");
    assert_eq!((sale.remaining, sale.returning), (3, 2));
    assert!(release(&mut conn, &sk, &order_id).await?);
    let sale = SaleRecord::read(&mut conn, &sk).await?.expect("a sale");
    assert_eq!((sale.remaining, sale.returning, sale.released), (5, 0, 2));
    let released = ReservationRecord::read(&mut conn, &sk, &order_id).await?;
    assert!(released.is_some_and(|r| r.released));

    // A reservation written by Rust (as `flashctl sale recover` rebuilds one) is one the
    // scripts read: it can be paid.
    let rebuilt = uuid::Uuid::now_v7().to_string();
    let record = ReservationRecord {
        user: "bob".into(),
        quantity: 1,
        state: ReservationState::Reserved,
        deadline_ms: 0,
        entry: None,
        ended: None,
        released: false,
    };
    redis::cmd("HSET")
        .arg(sk.reservation(&rebuilt))
        .arg(record.fields())
        .exec_async(&mut conn)
        .await?;
    let pay = Move {
        order_id: &rebuilt,
        to: ReservationState::Paid,
        ..cancel
    };
    let moved = transition(&mut conn, &pay).await?;
    assert!(
        matches!(
            moved,
            Transition::Moved {
                state: ReservationState::Paid,
                ..
            }
        ),
        "{moved:?}"
    );
    let paid = ReservationRecord::read(&mut conn, &sk, &rebuilt)
        .await?
        .expect("a reservation");
    assert_eq!(
        (paid.user.as_str(), paid.quantity, paid.state),
        ("bob", 1, ReservationState::Paid)
    );
    Ok(())
}
