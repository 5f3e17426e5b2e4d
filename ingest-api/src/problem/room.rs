//! The waiting room's refusals as answers: each [`RoomRefusal`] with its status, stable
//! code, title, `Retry-After` and detail, in two exhaustive matches.

use actix_web::http::StatusCode as S;
use flashsale_client::ProblemCode as C;

use super::parts::Shape;
use crate::order::room::RoomRefusal;

/// The answer's shape.
pub(super) fn shape(r: &RoomRefusal) -> Shape {
    match r {
        RoomRefusal::NotFound => Shape::new(S::NOT_FOUND, C::RoomNotFound, "No waiting room"),
        RoomRefusal::Closed => Shape::new(S::CONFLICT, C::RoomClosed, "Waiting room closed"),
        RoomRefusal::NotOpenYet { retry_after_secs } => {
            Shape::new(S::CONFLICT, C::RoomNotOpen, "Waiting room not open yet")
                .retry_after(*retry_after_secs)
        }
        RoomRefusal::FingerprintRequired => Shape::new(
            S::BAD_REQUEST,
            C::FingerprintRequired,
            "Device fingerprint required",
        ),
        RoomRefusal::DeviceHasTicket => {
            Shape::new(S::CONFLICT, C::DeviceHasTicket, "Device already in line")
        }
        RoomRefusal::InvalidTicket => {
            Shape::new(S::UNAUTHORIZED, C::InvalidTicket, "Invalid ticket")
        }
        RoomRefusal::TicketExpired => {
            Shape::new(S::UNAUTHORIZED, C::TicketExpired, "Ticket expired")
        }
        RoomRefusal::NotYourTicket => Shape::new(S::FORBIDDEN, C::NotYourTicket, "Not your ticket"),
        RoomRefusal::NotYetAdmitted { position, served } => {
            Shape::new(S::CONFLICT, C::NotYetAdmitted, "Not your turn yet")
                .retry_after(1)
                .extra("position", *position)
                .extra("served", *served)
        }
        RoomRefusal::ClaimExpired => {
            Shape::new(S::CONFLICT, C::ClaimExpired, "Claim window passed")
        }
        RoomRefusal::AdmissionUsed => {
            Shape::new(S::CONFLICT, C::AdmissionUsed, "Admission already used")
        }
        RoomRefusal::NotAdmitted { .. } => Shape::new(S::FORBIDDEN, C::NotAdmitted, "Not admitted")
            .retry_after(5)
            .extra("join", "POST /queue/{productId}/join"),
        RoomRefusal::Throttled { retry_after_ms } => {
            Shape::new(S::TOO_MANY_REQUESTS, C::RoomThrottled, "Claims throttled")
                .retry_after(retry_after_ms.div_ceil(1000).max(1))
        }
    }
}

/// The answer's detail.
pub(super) fn detail(r: &RoomRefusal) -> String {
    match r {
        RoomRefusal::NotFound => "this product has no waiting room".into(),
        RoomRefusal::Closed => "the waiting room is closed".into(),
        RoomRefusal::NotOpenYet { .. } => "the waiting room does not take joins yet".into(),
        RoomRefusal::FingerprintRequired => {
            "joining needs X-Device-Fingerprint: a ticket is bound to its device".into()
        }
        RoomRefusal::DeviceHasTicket => "this device holds another user's place in the line".into(),
        RoomRefusal::InvalidTicket => "the ticket or admission token is not valid".into(),
        RoomRefusal::TicketExpired => "the ticket or admission token has expired".into(),
        RoomRefusal::NotYourTicket => {
            "the token was issued to another user, device or sale, or revoked".into()
        }
        RoomRefusal::NotYetAdmitted { .. } => "your turn has not come yet".into(),
        RoomRefusal::ClaimExpired => "your turn came and the claim window passed".into(),
        RoomRefusal::AdmissionUsed => "this user's admission was used already".into(),
        RoomRefusal::NotAdmitted { why } => format!(
            "this sale has a waiting room: join it, claim your admission and send it as \
             X-Admission-Token ({why})"
        ),
        RoomRefusal::Throttled { .. } => "admissions are let in at the room's rate; retry".into(),
    }
}
