//! Placing one validated order: the sold-out fast path, the admission (the one Redis
//! call, behind the circuit breaker) and, for an acceptance, the hand-off to Kafka.
//!
//! [`Placer::place`] is the whole business side of `POST /order` after the front door; it
//! takes no HTTP types and ends in [`Accepted`] or a [`Refusal`], plus what the limits
//! said for the rate-limit headers.

use std::sync::Arc;
use std::time::Instant;

use shared::IdempotencyKey;
use shared::client::Pseudonymizer;
use shared::keys::SaleKeys;
use stores::NotReplicated;
use stores::redis::Conn;
use uuid::Uuid;

use super::admission::{
    Accepted, Admission, AdmissionError, Admitted, Breaker, Decision, Dependency, RateReport,
    Refusal, SoldOut, Ticket,
};
use super::front_door::{Client, OrderRequest};
use super::handoff::Handoff;
use crate::metrics::Metrics;

/// How placing an order ended, and what the script's limits said.
#[derive(Debug)]
pub struct Placed {
    /// The order stands, or why not.
    pub outcome: Result<Accepted, Refusal>,
    /// For the rate-limit headers ([`RateReport::NotEvaluated`] when the script did not
    /// reach its limits, or did not run).
    pub rate: RateReport,
}

/// Admission and hand-off, with what protects them.
#[derive(Debug, Clone)]
pub struct Placer {
    admission: Admission,
    handoff: Handoff,
    breaker: Arc<Breaker>,
    sold_out: Arc<SoldOut>,
    pseudonymizer: Pseudonymizer,
    metrics: Metrics,
}

impl Placer {
    /// Places orders through `admission` and `handoff`.
    pub fn new(
        admission: Admission,
        handoff: Handoff,
        breaker: Arc<Breaker>,
        sold_out: Arc<SoldOut>,
        pseudonymizer: Pseudonymizer,
        metrics: Metrics,
    ) -> Self {
        Self {
            admission,
            handoff,
            breaker,
            sold_out,
            pseudonymizer,
            metrics,
        }
    }

    /// The same placer over another Redis connection for the admission and the
    /// hand-off's confirmations. Each HTTP worker thread gets its own (created on that
    /// thread), so an order's Redis I/O runs where the request is handled instead of
    /// hopping to another thread and back.
    pub fn with_connection(&self, conn: Conn) -> Self {
        Self {
            admission: self.admission.with_connection(conn.clone()),
            handoff: self.handoff.with_connection(conn),
            ..self.clone()
        }
    }

    /// The hand-off (for the relay, readiness and the final flush).
    pub fn handoff(&self) -> &Handoff {
        &self.handoff
    }

    /// What keeps sharded sales' shards stocked (for its upkeep).
    pub fn restock(&self) -> &super::admission::restock::Restock {
        self.admission.restock()
    }

    /// What this instance knows is sold out (refreshed by [`SoldOut::run`]).
    pub fn sold_out(&self) -> &Arc<SoldOut> {
        &self.sold_out
    }

    /// Places one validated order from `client`, presenting `admission` (the id of the
    /// waiting room's admission token, verified) when it has one.
    pub async fn place(
        &self,
        order: OrderRequest,
        idempotency_key: IdempotencyKey,
        client: &Client,
        admission: Option<String>,
    ) -> Placed {
        if self.sold_out.answers_for(&order.product_id, &order.user_id) {
            self.metrics.sold_out_fast_path();
            return Placed {
                outcome: Err(Refusal::SoldOut { remaining: 0 }),
                rate: RateReport::NotEvaluated,
            };
        }
        let pseudonyms = client.pseudonyms(&self.pseudonymizer);
        let ticket = Ticket::new(order, idempotency_key, client, pseudonyms, admission);
        let Admitted {
            decision,
            rate,
            replicated,
            on,
            sharded,
        } = match self.admit(&ticket).await {
            Ok(admitted) => admitted,
            Err(refusal) => {
                return Placed {
                    outcome: Err(refusal),
                    rate: RateReport::NotEvaluated,
                };
            }
        };
        let on = on.unwrap_or_else(|| self.handoff.keys().sale(&ticket.event.product_id));
        let outcome = self
            .follow(&ticket, (decision, sharded), &on, replicated)
            .await;
        Placed { outcome, rate }
    }

    /// What a decision means for the order: an acceptance held by the replicas is handed
    /// off (its entry is in the outbox of `on`, the keys it was decided on), a replay
    /// answers as the first answer did, a refusal stands; a product found with nothing
    /// left is marked sold out for the fast path (a shard with nothing left is not).
    async fn follow(
        &self,
        ticket: &Ticket<'_>,
        (decision, sharded): (Decision, bool),
        on: &SaleKeys,
        replicated: Result<(), NotReplicated>,
    ) -> Result<Accepted, Refusal> {
        match decision {
            Decision::Take {
                remaining,
                entry_id,
                deadline_ms,
            } => {
                if remaining == 0 && !sharded {
                    self.sold_out.mark(&ticket.event.product_id);
                }
                self.replicated(ticket, replicated)?;
                self.publish(ticket, on, &entry_id, deadline_ms).await
            }
            Decision::Replay {
                status,
                body,
                order_id,
                deadline_ms,
            } => Uuid::parse_str(&order_id)
                .map(|order_id| Accepted::Replayed {
                    status,
                    order_id,
                    body: Ticket::replay(body, deadline_ms),
                })
                .map_err(|e| Refusal::Internal(anyhow::anyhow!("stored order id: {e}"))),
            Decision::Refuse(refusal) => {
                if let Refusal::SoldOut { remaining: 0 } = refusal {
                    self.sold_out.mark(&ticket.event.product_id);
                }
                Err(refusal)
            }
        }
    }

    /// The one Redis call, behind the circuit breaker. Fails closed.
    #[tracing::instrument(name = "admission", skip_all, fields(product = %ticket.event.product_id))]
    async fn admit(&self, ticket: &Ticket<'_>) -> Result<Admitted, Refusal> {
        let unavailable = |outcome_unknown| Refusal::Unavailable {
            dependency: Dependency::Redis,
            outcome_unknown,
        };
        if !self.breaker.allow() {
            self.metrics.redis_failure();
            return Err(unavailable(false));
        }
        let started = Instant::now();
        match self.admission.admit(ticket).await {
            Ok(admitted) => {
                self.breaker.success();
                self.metrics.redis_call(started.elapsed());
                Ok(admitted)
            }
            Err(AdmissionError::Unavailable(e)) => {
                // Any Redis failure fails closed and counts against the breaker. Only a
                // refused connection proves the script never ran; after a timeout, a
                // dropped connection or a server-side error it may have, and the same key
                // tells.
                self.breaker.failure();
                self.metrics.redis_failure();
                let unknown = !e.is_connection_refusal();
                tracing::error!(error = %e, outcome_unknown = unknown, "admission failed; failing closed");
                Err(unavailable(unknown))
            }
            Err(AdmissionError::Layout(e)) => {
                // No script ran, so nothing was accepted.
                self.breaker.failure();
                self.metrics.redis_failure();
                tracing::error!(error = %e, "reading the sale's layout failed; failing closed");
                Err(unavailable(false))
            }
            Err(e @ AdmissionError::BadReply(_)) => {
                // Redis is fine, but this build cannot read what the script decided.
                self.breaker.success();
                tracing::error!(error = %e, "unreadable admission reply");
                Err(unavailable(true))
            }
        }
    }

    /// Holds an accepted order back unless the required replicas have it: then the entry
    /// stays in the outbox for the relay and the answer is 503 with the outcome unknown
    /// (the same key tells it later).
    fn replicated(
        &self,
        ticket: &Ticket<'_>,
        replicated: Result<(), NotReplicated>,
    ) -> Result<(), Refusal> {
        let product = &ticket.event.product_id;
        replicated.map_err(|e| {
            self.metrics.replica_shortfall();
            tracing::error!(error = %e, %product, "admission not on enough replicas; the relay will hand the order off");
            Refusal::Unavailable {
                dependency: Dependency::Redis,
                outcome_unknown: true,
            }
        })
    }

    /// Hands an accepted order to Kafka and waits for the acknowledgement (the `publish`
    /// span is [`Handoff::publish`]'s); the answer carries the payment deadline.
    async fn publish(
        &self,
        ticket: &Ticket<'_>,
        on: &SaleKeys,
        entry_id: &str,
        deadline_ms: u64,
    ) -> Result<Accepted, Refusal> {
        match self
            .handoff
            .publish(
                ticket.event.order_id,
                &ticket.event_json,
                self.handoff.placed(on, &ticket.event, entry_id),
            )
            .await
        {
            Ok(()) => Ok(Accepted::New {
                order_id: ticket.event.order_id,
                body: ticket.answer(deadline_ms),
            }),
            Err(e) => {
                tracing::error!(error = %e, "publish failed; the relay will hand the order off");
                Err(Refusal::Unavailable {
                    dependency: Dependency::Kafka,
                    outcome_unknown: true,
                })
            }
        }
    }
}
