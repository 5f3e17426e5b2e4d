//! Reading Redis replies: the few value shapes the scripts and stream commands answer
//! with, in one place for every reader (`lua/admit.lua`'s and `lua/transition.lua`'s
//! replies, outbox entries, `WAIT`).
//!
//! `redis::Value` is a `#[non_exhaustive]` enum of fifteen shapes (RESP2 and RESP3);
//! each reader here takes the one or two it expects and treats every other as "not
//! this", so its matches end in a wildcard — the one place that may
//! (`clippy::wildcard_enum_match_arm` is allowed in this module only).
#![allow(clippy::wildcard_enum_match_arm)]

use redis::Value;

/// A command's own error inside a pipeline comes back as a value: make it the error it
/// is.
pub fn checked(v: Value) -> redis::RedisResult<Value> {
    match v {
        Value::ServerError(e) => Err(redis::RedisError::from(e)),
        v => Ok(v),
    }
}

/// A value as text (bulk, simple or integer), if it is one.
pub fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// A value as an integer (an integer, or text holding one), if it is one.
pub fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Int(i) => Some(*i),
        other => text(Some(other))?.parse().ok(),
    }
}

/// A value as a non-negative integer, if it is one.
pub fn unsigned(v: Option<&Value>) -> Option<u64> {
    int(v).and_then(|i| u64::try_from(i).ok())
}

/// The items of an array value, if it is one.
pub fn items(v: Option<&Value>) -> Option<&[Value]> {
    match v? {
        Value::Array(items) => Some(items),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_text_and_numbers_of_any_shape() {
        let bulk = Value::BulkString(b"42".to_vec());
        assert_eq!(text(Some(&bulk)).as_deref(), Some("42"));
        assert_eq!(int(Some(&bulk)), Some(42));
        assert_eq!(int(Some(&Value::Int(-3))), Some(-3));
        assert_eq!(unsigned(Some(&Value::Int(-3))), None);
        assert_eq!(text(Some(&Value::Nil)), None);
        assert_eq!(text(None), None);
        assert_eq!(
            items(Some(&Value::Array(vec![Value::Nil]))).map(<[Value]>::len),
            Some(1)
        );
    }
}
