//! Why the waiting room refused a join, a poll, a claim, or an order without an
//! admission (`ingest-api/API.md`, "Waiting room"). The problem module turns each into its
//! answer with a stable code.

/// A refusal of the room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomRefusal {
    /// The product has no waiting room.
    #[error("no waiting room")]
    NotFound,
    /// The room is closed (the line ended; its admissions are void).
    #[error("the room is closed")]
    Closed,
    /// Joins are not taken yet (before `--prequeue-from`).
    #[error("the room does not take joins yet")]
    NotOpenYet {
        /// Seconds until it does.
        retry_after_secs: u64,
    },
    /// A join needs `X-Device-Fingerprint`: a ticket is bound to its device.
    #[error("a device fingerprint is required")]
    FingerprintRequired,
    /// Another user holds this device's ticket.
    #[error("this device holds another user's ticket")]
    DeviceHasTicket,
    /// The ticket or admission token is not one of ours.
    #[error("invalid token")]
    InvalidTicket,
    /// The token expired.
    #[error("token expired")]
    TicketExpired,
    /// The token was issued to another user, device, sale or room epoch (or its record
    /// is gone: revoked).
    #[error("not this client's token")]
    NotYourTicket,
    /// The waiter's turn has not come yet.
    #[error("not yet admitted (position {position}, {served} served)")]
    NotYetAdmitted {
        /// The waiter's position (0 before the opening).
        position: u64,
        /// Positions released so far.
        served: u64,
    },
    /// The waiter's turn came and passed: the claim window is over.
    #[error("the claim window has passed")]
    ClaimExpired,
    /// The user's admission was used already.
    #[error("the admission was used")]
    AdmissionUsed,
    /// An order without a valid admission while the product's room is on.
    #[error("not admitted ({why})")]
    NotAdmitted {
        /// `missing`, `used`, `expired`, `closed`, or what was wrong with the token.
        why: String,
    },
    /// Claims are coming faster than the room's rate.
    #[error("claims are throttled")]
    Throttled {
        /// Milliseconds until one passes.
        retry_after_ms: u64,
    },
}
