//! The `POST /order` body: JSON Schema validation, compiled once at start-up.

use serde::{Deserialize, Serialize};
use shared::{ProductId, Quantity, UserId};

/// The schema text, also published in `ingest-api/openapi.yaml` (`tests/openapi.rs` checks
/// that they agree) and linked from `ingest-api/API.md`.
pub const ORDER_SCHEMA: &str = include_str!("order-request.schema.json");

/// One JSON Schema violation, pointing into the request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON Pointer (RFC 6901) to the offending value; `""` is the whole body.
    pub pointer: String,
    /// What is wrong, without echoing the value.
    pub detail: String,
}

impl FieldError {
    /// A violation at `pointer`.
    pub fn at(pointer: &str, detail: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            detail: detail.into(),
        }
    }
}

/// A body that passed the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    /// What to buy.
    pub product_id: ProductId,
    /// Who buys.
    pub user_id: UserId,
    /// How many (default 1).
    pub quantity: Quantity,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    product_id: ProductId,
    user_id: UserId,
    #[serde(default)]
    quantity: Quantity,
}

/// The compiled validator.
pub struct OrderSchema {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for OrderSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OrderSchema")
    }
}

impl OrderSchema {
    /// Compiles [`ORDER_SCHEMA`]; fails only if the embedded schema is broken.
    pub fn compile() -> anyhow::Result<Self> {
        let schema: serde_json::Value = serde_json::from_str(ORDER_SCHEMA)?;
        let validator = jsonschema::validator_for(&schema)
            .map_err(|e| anyhow::anyhow!("order schema does not compile: {e}"))?;
        Ok(Self { validator })
    }

    /// Parses and validates a body, reporting every violation with a JSON Pointer.
    pub fn parse(&self, body: &[u8]) -> Result<OrderRequest, Vec<FieldError>> {
        let mut value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            vec![FieldError {
                pointer: String::new(),
                detail: format!("body is not valid JSON ({})", e.classify_name()),
            }]
        })?;
        let mut errors: Vec<FieldError> = self
            .validator
            .iter_errors(&value)
            .map(|e| FieldError {
                pointer: e.instance_path().as_str().to_owned(),
                detail: e.masked().to_string(),
            })
            .collect();
        if !errors.is_empty() {
            errors.sort_by(|a, b| a.pointer.cmp(&b.pointer));
            return Err(errors);
        }
        // JSON Schema counts `10.0` as an integer, so the schema passed it: read it as 10.
        if let Some(q) = value.get_mut("quantity")
            && !q.is_u64()
            && let Some(n) = q.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0)
        {
            *q = serde_json::Value::from(n as u64);
        }
        // The schema and the domain types state the same rules; if they ever disagree,
        // the stricter one wins and the client still gets a pointer-less explanation
        // (never the value itself).
        let body: Body = serde_json::from_value(value).map_err(|e| {
            vec![FieldError {
                pointer: String::new(),
                detail: format!("the body does not fit an order ({})", e.classify_name()),
            }]
        })?;
        Ok(OrderRequest {
            product_id: body.product_id,
            user_id: body.user_id,
            quantity: body.quantity,
        })
    }
}

trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "wrong type",
            serde_json::error::Category::Eof => "unexpected end",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn schema() -> OrderSchema {
        OrderSchema::compile().expect("embedded schema compiles")
    }

    #[test]
    fn accepts_the_contract_example_and_defaults_quantity() {
        let s = schema();
        let o = s
            .parse(br#"{"productId":"iphone-15","userId":"u-1001","quantity":1}"#)
            .expect("valid");
        assert_eq!(o.quantity.get(), 1);
        let o = s
            .parse(br#"{"productId":"iphone-15","userId":"u-1001"}"#)
            .expect("valid");
        assert_eq!(o.quantity.get(), 1);
    }

    #[test]
    fn reports_every_violation_with_a_pointer() {
        let errors = schema()
            .parse(br#"{"productId":"IPHONE","userId":"u 1","quantity":11,"price":1}"#)
            .expect_err("invalid");
        let pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert!(pointers.contains(&"/productId"), "{errors:?}");
        assert!(pointers.contains(&"/userId"), "{errors:?}");
        assert!(pointers.contains(&"/quantity"), "{errors:?}");
        assert!(pointers.contains(&""), "additionalProperties: {errors:?}");
        assert!(
            errors.iter().all(|e| !e.detail.contains("IPHONE")),
            "values are not echoed"
        );
    }

    #[test]
    fn edge_cases() {
        let s = schema();
        for bad in [
            &b""[..],
            b"null",
            b"[]",
            b"{}",
            br#"{"productId":"p","userId":"u","quantity":1.5}"#,
            br#"{"productId":"p","userId":"u","quantity":"1"}"#,
            br#"{"productId":"p","userId":"u","quantity":0}"#,
            br#"{"productId":"","userId":"u"}"#,
            br#"{"productId":"p","userId":"u","quantity":null}"#,
            br#"{"productId":"p","userId":"u"} trailing"#,
        ] {
            assert!(s.parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        // 10.0 and 1e1 are integers for JSON Schema, so for the contract (found by
        // schemathesis: they were refused with serde's words, echoing the value).
        for ten in [&br#"10.0"#[..], b"1e1"] {
            let body = [
                &br#"{"productId":"p","userId":"u","quantity":"#[..],
                ten,
                b"}",
            ]
            .concat();
            let order = s.parse(&body).expect("an integral number is an integer");
            assert_eq!(order.quantity.get(), 10);
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = schema().parse(&body);
        }

        #[test]
        fn valid_orders_round_trip(
            p in "[a-z0-9-]{1,50}",
            u in "[a-z0-9-]{1,50}",
            q in 1u32..=10,
        ) {
            let body = format!(r#"{{"productId":"{p}","userId":"{u}","quantity":{q}}}"#);
            let o = schema().parse(body.as_bytes()).expect("valid");
            prop_assert_eq!(o.product_id.as_str(), p.as_str());
            prop_assert_eq!(o.user_id.as_str(), u.as_str());
            prop_assert_eq!(o.quantity.get(), q);
        }

        #[test]
        fn quantities_out_of_range_are_refused(q in prop_oneof![-1000i64..=0, 11i64..=100_000]) {
            let body = format!(r#"{{"productId":"p","userId":"u","quantity":{q}}}"#);
            prop_assert!(schema().parse(body.as_bytes()).is_err());
        }
    }
}
