//! What every handler with a body reads before its own logic: header values, the media
//! type and declared size (415, 413), the body within its size limit and timeout, and
//! the rule that an answer holds a body not read to its end until the answer is written.

use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::http::header::HeaderMap;
use actix_web::{HttpResponse, web};
use futures_util::StreamExt;

use crate::problem::{ApiError, FieldError};

/// Largest accepted body (`ingest-api/API.md`).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A header's value, if present and visible ASCII.
pub(super) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A JSON body no larger than the limit, as far as the headers tell (415, 413).
pub(super) fn json_within_limit(headers: &HeaderMap) -> Result<(), ApiError> {
    let media_ok = header(headers, "content-type")
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mt| mt.trim().eq_ignore_ascii_case("application/json"));
    if !media_ok {
        return Err(ApiError::UnsupportedMediaType);
    }
    let declared = header(headers, "content-length").and_then(|l| l.parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    Ok(())
}

/// Reads the body, refusing it as soon as it passes the limit (chunked bodies too).
async fn read_body(payload: &mut web::Payload) -> Result<web::Bytes, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::Validation(vec![FieldError {
                pointer: String::new(),
                detail: "the body could not be read".into(),
            }])
        })?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[tracing::instrument(name = "body", skip_all)]
pub(super) async fn body(
    payload: &mut web::Payload,
    timeout: Duration,
) -> Result<web::Bytes, ApiError> {
    tokio::time::timeout(timeout, read_body(payload))
        .await
        .map_err(|_| ApiError::RequestTimeout)?
}

/// The request's body stays attached to the answer until the answer is written. A body
/// not read to its end (a timeout, too large, refused before reading) then closes the
/// connection after the answer: dropped any earlier, the server would go on reading and
/// discarding a chunked body for as long as the client trickles it. A body read to its
/// end changes nothing.
pub(super) fn with_unread_body(response: HttpResponse, payload: web::Payload) -> HttpResponse {
    response
        .map_body(|_, body| HoldingBody {
            body,
            _held: payload,
        })
        .map_into_boxed_body()
}

/// An answer's body that holds the request's body until it is written
/// ([`with_unread_body`]).
struct HoldingBody {
    body: BoxBody,
    _held: web::Payload,
}

impl MessageBody for HoldingBody {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<web::Bytes, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}
