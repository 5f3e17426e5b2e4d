//! The waiting room's requests (`ingest-api/API.md`, "Waiting room"): join the line,
//! poll it, claim the admission once the turn has come, and order with it.

use crate::answer::{Answer, send};
use crate::client::Client;
use crate::headers;

impl Client {
    /// A signed `POST /queue/{product}/join` for `user` from `device`
    /// (`X-Device-Fingerprint`, required: the ticket is bound to it).
    pub fn join_request(&self, product: &str, user: &str, device: &str) -> reqwest::RequestBuilder {
        let body = serde_json::json!({ "userId": user })
            .to_string()
            .into_bytes();
        let key = crate::new_key();
        self.signed_post(&format!("/queue/{product}/join"), &body, &key)
            .header(headers::DEVICE_FINGERPRINT, device)
    }

    /// Joins the line once; the answer's `ticket` is what [`Client::queue_status`] and
    /// [`Client::claim`] present.
    pub async fn join(&self, product: &str, user: &str, device: &str) -> reqwest::Result<Answer> {
        send(self.join_request(product, user, device)).await
    }

    /// `GET /queue/{product}/status` with `ticket`, from `device`.
    pub async fn queue_status(
        &self,
        product: &str,
        ticket: &str,
        device: &str,
    ) -> reqwest::Result<Answer> {
        send(
            self.http()
                .get(format!("{}/queue/{product}/status", self.base_url()))
                .header(headers::QUEUE_TICKET, ticket)
                .header(headers::DEVICE_FINGERPRINT, device),
        )
        .await
    }

    /// A signed `POST /queue/{product}/claim` of `user`'s `ticket`, from `device`.
    pub fn claim_request(
        &self,
        product: &str,
        user: &str,
        ticket: &str,
        device: &str,
    ) -> reqwest::RequestBuilder {
        let body = serde_json::json!({ "userId": user })
            .to_string()
            .into_bytes();
        let key = crate::new_key();
        self.signed_post(&format!("/queue/{product}/claim"), &body, &key)
            .header(headers::QUEUE_TICKET, ticket)
            .header(headers::DEVICE_FINGERPRINT, device)
    }

    /// Claims the admission once; the answer's `admissionToken` goes with the order
    /// ([`Client::place_admitted`]).
    pub async fn claim(
        &self,
        product: &str,
        user: &str,
        ticket: &str,
        device: &str,
    ) -> reqwest::Result<Answer> {
        send(self.claim_request(product, user, ticket, device)).await
    }

    /// A signed `POST /order` of `body` under `idempotency_key` from `device`, presenting
    /// `admission` (`X-Admission-Token`).
    pub async fn place_admitted(
        &self,
        body: &[u8],
        idempotency_key: &str,
        device: &str,
        admission: &str,
    ) -> reqwest::Result<Answer> {
        send(
            self.order_request(body, idempotency_key)
                .header(headers::DEVICE_FINGERPRINT, device)
                .header(headers::ADMISSION_TOKEN, admission),
        )
        .await
    }
}
