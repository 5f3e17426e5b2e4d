//! `ingest-api/openapi.yaml` cannot drift from the code: every error the API can answer
//! is documented with its code under its status, the document names no code nothing
//! produces, its request schema is the one the API compiles, and the admin port serves
//! exactly this document.
#![allow(clippy::expect_used, clippy::wildcard_enum_match_arm)] // a test may expect, and match loosely

use std::collections::BTreeSet;

use ingest_api::problem::ApiError;
use ingest_api::routes::admin::OPENAPI;
use serde_json::Value;
use testkit::TestStack;
use testkit::api::{ApiStack, RunningApi};

fn document() -> Value {
    yaml_serde::from_str(OPENAPI).expect("openapi.yaml is YAML")
}

/// (status, code) of every problem response the document declares.
fn documented_pairs(doc: &Value) -> BTreeSet<(u64, String)> {
    let mut pairs = BTreeSet::new();
    let responses = doc["components"]["responses"]
        .as_object()
        .expect("components.responses");
    for name in responses.keys() {
        let (status, codes) = declared(doc, name);
        for code in codes {
            pairs.insert((status, code));
        }
    }
    pairs
}

/// The status and codes of the problem response `name`: its schema (a `$ref` into
/// `components.schemas`) is an `allOf` of `Problem` and a part narrowing `status` to an
/// enum of one value and `code` to an enum.
fn declared(doc: &Value, name: &str) -> (u64, Vec<String>) {
    let target = doc["components"]["responses"][name]["content"]["application/problem+json"]
        ["schema"]["$ref"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: a problem schema by $ref"));
    let schema = &doc["components"]["schemas"][target.trim_start_matches("#/components/schemas/")];
    let parts = schema["allOf"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: {target} with allOf"));
    let narrowed = &parts[1]["properties"];
    let status = match narrowed["status"]["enum"].as_array().map(Vec::as_slice) {
        Some([status]) => status.as_u64(),
        _ => None,
    }
    .unwrap_or_else(|| panic!("{name}: status enum of one value"));
    let codes = narrowed["code"]["enum"].as_array().expect("code enum");
    let codes = codes.iter().map(|c| c.as_str().expect("code").to_owned());
    (status, codes.collect())
}

#[test]
fn every_error_is_documented_under_its_status_and_nothing_else() {
    let doc = document();
    let pairs = documented_pairs(&doc);
    let produced: BTreeSet<(u64, String)> = ApiError::one_of_each()
        .iter()
        .map(|e| (u64::from(e.status().as_u16()), e.code().to_owned()))
        .collect();
    let missing: Vec<_> = produced.difference(&pairs).collect();
    assert!(missing.is_empty(), "not in openapi.yaml: {missing:?}");
    let unknown: Vec<_> = pairs.difference(&produced).collect();
    assert!(
        unknown.is_empty(),
        "documented but never answered: {unknown:?}"
    );
    let codes: BTreeSet<String> = doc["components"]["schemas"]["ProblemCode"]["enum"]
        .as_array()
        .expect("ProblemCode enum")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    let answered: BTreeSet<String> = produced.into_iter().map(|(_, c)| c).collect();
    assert_eq!(
        codes, answered,
        "ProblemCode lists exactly the codes answered"
    );
}

#[test]
fn the_request_schema_is_the_one_the_api_compiles() {
    let mut compiled: Value = serde_json::from_str(include_str!(
        "../src/order/front_door/order-request.schema.json"
    ))
    .expect("schema JSON");
    let object = compiled.as_object_mut().expect("an object");
    for annotation in ["$schema", "$id", "title"] {
        object.remove(annotation);
    }
    assert_eq!(
        document()["components"]["schemas"]["OrderRequest"],
        compiled,
        "openapi.yaml's OrderRequest differs from src/order/front_door/order-request.schema.json"
    );
}

#[test]
fn every_operation_refers_to_responses_of_its_status() {
    let doc = document();
    let responses = doc["components"]["responses"]
        .as_object()
        .expect("responses");
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if method == "servers" || method == "parameters" {
                continue;
            }
            for (status, answer) in op["responses"].as_object().expect("responses") {
                assert!(status.parse::<u16>().is_ok(), "{method} {path}: {status}");
                if let Some(target) = answer["$ref"].as_str() {
                    let name = target.trim_start_matches("#/components/responses/");
                    assert!(responses.contains_key(name), "{method} {path}: {target}");
                    assert_eq!(
                        declared(&doc, name).0.to_string(),
                        status.as_str(),
                        "{method} {path}: {status} refers to {name}"
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_port_serves_the_document() -> anyhow::Result<()> {
    let stack = TestStack::new().await?;
    let api = RunningApi::start(stack.api_settings()).await?;
    let answer = reqwest::get(format!("http://127.0.0.1:{}/openapi.yaml", api.admin_port)).await?;
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.headers()["content-type"].to_str()?,
        "application/yaml"
    );
    assert_eq!(answer.text().await?, OPENAPI);
    // The admin port answers its refusals in problem+json too (found by schemathesis).
    let admin = format!("http://127.0.0.1:{}", api.admin_port);
    let http = reqwest::Client::new();
    let post = testkit::client::send(http.post(format!("{admin}/healthz"))).await?;
    assert_eq!(
        (post.status, post.code()),
        (405, "METHOD_NOT_ALLOWED".into())
    );
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let missing = testkit::client::send(http.get(format!("{admin}/nowhere"))).await?;
    assert_eq!(
        (missing.status, missing.code()),
        (404, "ROUTE_NOT_FOUND".into())
    );
    api.stop().await
}
