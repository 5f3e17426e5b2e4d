//! `POST /order` bodies through the JSON Schema the API compiles: never a panic; an
//! accepted body is a valid order (ids the domain types accept, quantity 1..=10), and
//! every refusal points into the body without echoing it.
#![no_main]

use std::sync::OnceLock;

use ingest_api::order::front_door::OrderSchema;
use libfuzzer_sys::fuzz_target;

fn schema() -> &'static OrderSchema {
    static SCHEMA: OnceLock<OrderSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| OrderSchema::compile().expect("the schema compiles"))
}

fuzz_target!(|body: &[u8]| {
    match schema().parse(body) {
        Ok(order) => {
            assert!((1..=10).contains(&order.quantity.get()));
            assert!(shared::ProductId::parse(order.product_id.to_string()).is_ok());
            assert!(shared::UserId::parse(order.user_id.to_string()).is_ok());
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in &errors {
                assert!(e.pointer.is_empty() || e.pointer.starts_with('/'), "{e:?}");
            }
        }
    }
});
