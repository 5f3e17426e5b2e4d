//! What an error's answer is made of besides its detail: status, code, title,
//! `Retry-After`, `Allow`, whether the connection closes, violation kind, extra members.

use actix_web::http::StatusCode;
use flashsale_client::ProblemCode;
use shared::ViolationKind;

/// What an error's answer is made of besides its detail.
pub(super) struct Shape {
    pub(super) status: StatusCode,
    pub(super) code: ProblemCode,
    pub(super) title: &'static str,
    /// Seconds for `Retry-After`, where the answer calls for one.
    pub(super) retry_after: Option<u64>,
    /// The `Allow` header of a 405.
    pub(super) allow: Option<&'static str>,
    /// Close the connection after answering (the request's body was not read to its end).
    pub(super) close: bool,
    /// The violation type this refusal counts as, if it is one.
    pub(super) violation: Option<ViolationKind>,
    /// Members of the problem body beyond the standard ones.
    pub(super) extra: Vec<(&'static str, serde_json::Value)>,
}

impl Shape {
    pub(super) fn new(status: StatusCode, code: ProblemCode, title: &'static str) -> Self {
        Self {
            status,
            code,
            title,
            retry_after: None,
            allow: None,
            close: false,
            violation: None,
            extra: Vec::new(),
        }
    }

    pub(super) fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub(super) fn closes(mut self) -> Self {
        self.close = true;
        self
    }

    pub(super) fn violation(mut self, kind: ViolationKind) -> Self {
        self.violation = Some(kind);
        self
    }

    pub(super) fn extra(
        mut self,
        member: &'static str,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.extra.push((member, value.into()));
        self
    }
}
