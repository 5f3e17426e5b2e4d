//! The waiting room's tokens (`shared::room::TokenKeys::read`, `Claims::peek`): any string
//! is read without a panic, and the only token that verifies is one the keys signed. The
//! input picks the claims of a genuine token and then a change to it: a changed token
//! never verifies, and the unchanged one reads back as the claims it was signed with.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::room::{Claims, Kind, TokenKeys};

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-_";

/// A field of the claims from the input (the alphabet of product, user and device ids).
fn field(data: &mut &[u8], max: usize) -> String {
    let len = usize::from(data.first().copied().unwrap_or(0)) % max + 1;
    let (bytes, rest) = data.split_at(data.len().min(len + 1));
    *data = rest;
    let picked: String = bytes
        .iter()
        .skip(1)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    if picked.is_empty() { "x".into() } else { picked }
}

fn number(data: &mut &[u8]) -> u64 {
    let (bytes, rest) = data.split_at(data.len().min(4));
    *data = rest;
    let mut b = [0u8; 4];
    b[..bytes.len()].copy_from_slice(bytes);
    u64::from(u32::from_le_bytes(b))
}

fuzz_target!(|data: &[u8]| {
    let keys = TokenKeys::parse("f1:fuzz-room-token-key-0123456789abcdef").expect("a valid key");
    // Any string at all.
    let text = String::from_utf8_lossy(data);
    let _ = Claims::peek(&text);
    for kind in [Kind::Ticket, Kind::Admission] {
        if keys.read(&text, kind).is_ok() {
            panic!("an unsigned string verified: {text:?}");
        }
    }
    // A genuine token, then one change to it.
    let mut rest = data;
    let kind = if number(&mut rest) % 2 == 0 { Kind::Ticket } else { Kind::Admission };
    let claims = Claims {
        kind,
        product: field(&mut rest, 50),
        epoch: number(&mut rest),
        user: field(&mut rest, 64),
        device: field(&mut rest, 64),
        arrival: number(&mut rest),
        id: field(&mut rest, 16),
        issued_s: number(&mut rest),
        expires_s: number(&mut rest),
        eta_s: number(&mut rest),
    };
    let token = keys.sign(&claims).expect("the key signs");
    assert_eq!(keys.read(&token, kind).as_ref(), Ok(&claims), "{token}");
    let mut bytes = token.clone().into_bytes();
    let at = usize::try_from(number(&mut rest)).unwrap_or(0) % bytes.len();
    let with = rest.first().copied().unwrap_or(b'A');
    match number(&mut rest) % 3 {
        0 => bytes[at] = with,
        1 => bytes.insert(at, with),
        _ => {
            bytes.remove(at);
        }
    }
    let changed = String::from_utf8_lossy(&bytes).into_owned();
    if changed != token {
        assert!(keys.read(&changed, kind).is_err(), "a changed token verified: {changed}");
    }
});
