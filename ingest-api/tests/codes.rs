//! Every code has its mapping: each reply code `lua/admit.lua` documents is read by the
//! reply parser, each refusal it becomes has an answer, and each answer's code is in
//! `ingest-api/API.md` under its status — and the table names no code nothing produces.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

use std::collections::{BTreeMap, BTreeSet};

use ingest_api::order::admission::Decision;
use ingest_api::order::admission::reply::parse_reply;
use ingest_api::problem::ApiError;
use redis::Value;

fn repo(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The error table of API.md: status → codes.
fn documented() -> BTreeMap<u16, BTreeSet<String>> {
    let mut table = BTreeMap::new();
    for line in repo("ingest-api/API.md").lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(status) = cells.get(1).and_then(|c| c.parse::<u16>().ok()) else {
            continue;
        };
        let codes: BTreeSet<String> = cells[2]
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|c| c.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_'))
            .map(str::to_owned)
            .collect();
        table.insert(status, codes);
    }
    table
}

/// The reply lines of `admit.lua`'s header: `{"CODE", rl, field, …}`.
fn lua_replies() -> Vec<(String, Vec<String>)> {
    let lua = repo("lua/admit.lua");
    let header = lua.split("REPLIES").nth(1).expect("a REPLIES section");
    let header = header.split("]]").next().unwrap_or_default();
    header
        .lines()
        .filter_map(|l| l.trim().strip_prefix("{\""))
        .map(|l| {
            let inner = l.rsplit_once('}').map_or(l, |(inner, _)| inner);
            let mut parts = inner
                .split(',')
                .map(|p| p.trim().trim_matches('"').to_owned());
            let code = parts.next().unwrap_or_default();
            (code, parts.collect())
        })
        .collect()
}

/// A reply value for a documented placeholder.
fn value(placeholder: &str) -> Value {
    let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
    match placeholder {
        "rl" | "{}" => Value::Array(vec![]),
        "scope" => bulk("ip"),
        "state" => bulk("halted"),
        "status" => Value::Int(202),
        "body" => bulk("{}"),
        "order_id" => bulk("0190c8c4-6f55-7000-8000-000000000000"),
        "entry_id" => bulk("1-0"),
        _ => Value::Int(1),
    }
}

#[test]
fn every_code_has_its_mapping_and_its_documentation() {
    let table = documented();
    assert!(table.len() >= 10, "the error table of API.md was not found");
    let documented_under = |e: &ApiError| {
        table
            .get(&e.status().as_u16())
            .is_some_and(|codes| codes.contains(e.code()))
    };

    let replies = lua_replies();
    assert!(
        replies.len() >= 10,
        "the replies of admit.lua were not found"
    );
    for (code, placeholders) in &replies {
        let mut reply = vec![Value::BulkString(code.as_bytes().to_vec())];
        reply.extend(placeholders.iter().map(|p| value(p)));
        let admitted = parse_reply(&reply)
            .unwrap_or_else(|e| panic!("admit.lua's {code} has no reading in parse_reply: {e}"));
        if let Decision::Refuse(refusal) = admitted.decision {
            let answer = ApiError::from(refusal);
            assert!(
                documented_under(&answer),
                "admit.lua's {code} answers {} {}, which API.md does not list",
                answer.status().as_u16(),
                answer.code()
            );
        }
    }

    let produced: BTreeSet<&str> = ApiError::one_of_each().iter().map(ApiError::code).collect();
    for e in ApiError::one_of_each() {
        assert!(
            documented_under(&e),
            "{} {} is not in API.md's error table",
            e.status().as_u16(),
            e.code()
        );
    }
    for (status, codes) in &table {
        for code in codes {
            assert!(
                produced.contains(code.as_str()),
                "API.md lists {status} {code}, which no answer produces"
            );
        }
    }
}
