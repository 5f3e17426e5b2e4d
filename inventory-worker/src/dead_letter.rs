//! Poison: messages the worker cannot write go to the dead-letter topic and to
//! `rejected_orders`, with the reason, and the partition moves on.

use std::collections::HashSet;
use std::time::Duration;

use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::FutureRecord;
use shared::{OrderPlaced, OrderTransitioned};
use uuid::Uuid;

use crate::consumer::{ProcessError, Worker};
use crate::db::{self, Rejection};

/// A message that cannot be written, with the reason and what could be read of it.
pub(crate) struct Poison<'a> {
    message: &'a OwnedMessage,
    reason: String,
    order_id: Option<Uuid>,
    product_id: Option<&'a str>,
}

impl<'a> Poison<'a> {
    /// A message that did not decode.
    pub(crate) fn unread(message: &'a OwnedMessage, reason: String) -> Self {
        Self {
            message,
            reason,
            order_id: None,
            product_id: None,
        }
    }

    /// A placement the database refused.
    pub(crate) fn placement(
        message: &'a OwnedMessage,
        reason: String,
        order: &'a OrderPlaced,
    ) -> Self {
        Self {
            message,
            reason,
            order_id: Some(order.order_id),
            product_id: Some(order.product_id.as_str()),
        }
    }

    /// A transition that cannot be applied.
    pub(crate) fn transition(
        message: &'a OwnedMessage,
        reason: String,
        event: &'a OrderTransitioned,
    ) -> Self {
        Self {
            message,
            reason,
            order_id: Some(event.order_id),
            product_id: Some(event.product_id.as_str()),
        }
    }
}

impl Worker {
    /// [`Self::dead_letter`], unless this batch already did it for this message.
    pub(crate) async fn dead_letter_once(
        &self,
        p: &Poison<'_>,
        dead: &mut HashSet<(i32, i64)>,
    ) -> Result<(), ProcessError> {
        let id = (p.message.partition(), p.message.offset());
        if !dead.contains(&id) {
            self.dead_letter(p).await?;
            dead.insert(id);
        }
        Ok(())
    }

    /// Sends a poison message to the dead-letter topic and records it in
    /// `rejected_orders`. Both must succeed before its offset may be stored.
    async fn dead_letter(&self, p: &Poison<'_>) -> Result<(), ProcessError> {
        let m = p.message;
        let payload = m.payload().unwrap_or_default();
        tracing::warn!(
            topic = m.topic(), partition = m.partition(), offset = m.offset(),
            reason = %p.reason, "poison message: dead-lettering"
        );
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "reason",
                value: Some(p.reason.as_bytes()),
            })
            .insert(Header {
                key: "source",
                value: Some(format!("{}/{}/{}", m.topic(), m.partition(), m.offset()).as_bytes()),
            });
        let mut record = FutureRecord::to(&self.dlq_topic)
            .payload(payload)
            .headers(headers);
        if let Some(key) = m.key() {
            record = record.key(key);
        }
        self.dlq
            .send(record, Duration::from_secs(5))
            .await
            .map_err(|(e, _)| ProcessError::Transient(format!("dead-letter topic: {e}")))?;
        db::record_rejection(
            &self.pool,
            &Rejection {
                topic: m.topic(),
                partition: m.partition(),
                offset: m.offset(),
                order_id: p.order_id,
                product_id: p.product_id,
                payload,
                reason: &p.reason,
            },
        )
        .await?;
        self.metrics.dead_lettered();
        Ok(())
    }
}
