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
    for (name, response) in responses {
        let parts = response["content"]["application/problem+json"]["schema"]["allOf"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: a problem schema with allOf"));
        let narrowed = &parts[1]["properties"];
        let status = narrowed["status"]["const"]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}: status const"));
        for code in narrowed["code"]["enum"].as_array().expect("code enum") {
            pairs.insert((status, code.as_str().expect("code").to_owned()));
        }
    }
    pairs
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
                    let declared = &responses[name]["content"]["application/problem+json"]["schema"]
                        ["allOf"][1]["properties"]["status"]["const"];
                    assert_eq!(
                        declared.as_u64().map(|s| s.to_string()).as_deref(),
                        Some(status.as_str()),
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
