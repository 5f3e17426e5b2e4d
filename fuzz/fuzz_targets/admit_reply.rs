//! Replies of `lua/admit.lua` as the API reads them: any shape Redis could return (a
//! changed, truncated or corrupted script reply) is a decision or an error, never a panic.
#![no_main]

use ingest_api::order::admission::reply::parse_reply;
use libfuzzer_sys::fuzz_target;
use redis::Value;

/// Builds reply values from the bytes: each value starts with a tag byte.
fn values(data: &mut &[u8], depth: u8) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some((&tag, rest)) = data.split_first() {
        *data = rest;
        let value = match tag % 6 {
            0 => return out,
            1 => {
                let (n, rest) = data.split_at(data.len().min(8));
                *data = rest;
                let mut b = [0u8; 8];
                b[..n.len()].copy_from_slice(n);
                Value::Int(i64::from_le_bytes(b))
            }
            2 | 3 => {
                let len = usize::from(data.first().copied().unwrap_or(0) % 24);
                let (s, rest) = data.split_at(data.len().min(len + 1));
                *data = rest;
                let s = s.get(1..).unwrap_or_default().to_vec();
                if tag % 6 == 2 {
                    Value::BulkString(s)
                } else {
                    Value::SimpleString(String::from_utf8_lossy(&s).into_owned())
                }
            }
            4 if depth < 3 => Value::Array(values(data, depth + 1)),
            _ => Value::Nil,
        };
        out.push(value);
    }
    out
}

const CODES: [&str; 11] = [
    "ACCEPTED",
    "REPLAY",
    "IN_FLIGHT",
    "KEY_REUSED",
    "SALE_NOT_FOUND",
    "SALE_NOT_OPEN",
    "BLOCKED",
    "RATE_LIMITED",
    "PURCHASE_LIMIT_REACHED",
    "SOLD_OUT",
    "MAYBE",
];

fuzz_target!(|data: &[u8]| {
    let Some((&code, mut rest)) = data.split_first() else {
        return;
    };
    // A documented code first most of the time, so the fuzzer explores the shapes.
    let mut reply = vec![Value::BulkString(
        CODES[usize::from(code) % CODES.len()].as_bytes().to_vec(),
    )];
    reply.extend(values(&mut rest, 0));
    let _ = parse_reply(&reply);
    let _ = parse_reply(&reply[1..]);
});
