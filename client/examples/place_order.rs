//! Places one order against a running API, the way a shop's backend would, and prints
//! what became of it.
//!
//! ```sh
//! FLASHSALE_URL=http://127.0.0.1:8080 FLASHSALE_KEY=demo:demo-secret-0123456789 \
//!   cargo run -p flashsale-client --example place_order -- iphone-15 u-1001
//! ```

use flashsale_client::{Client, Error, Order, RetryPolicy, new_key};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(product), Some(user)) = (args.next(), args.next()) else {
        eprintln!("usage: place_order PRODUCT USER   (FLASHSALE_URL, FLASHSALE_KEY=id:secret)");
        return std::process::ExitCode::from(64);
    };
    let url = std::env::var("FLASHSALE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let key = std::env::var("FLASHSALE_KEY").unwrap_or_default();
    let Some((key_id, secret)) = key.split_once(':') else {
        eprintln!("FLASHSALE_KEY must be id:secret");
        return std::process::ExitCode::from(64);
    };
    let client = Client::new(url, Some(key_id), secret.as_bytes());
    let order = Order {
        product_id: &product,
        user_id: &user,
        quantity: 1,
    };
    let idempotency_key = new_key();
    match client
        .place_order(&order, &idempotency_key, &RetryPolicy::default())
        .await
    {
        Ok(placed) => {
            println!(
                "accepted {} ({}), after {} attempt(s)",
                placed.order.order_id,
                placed.order.state.as_deref().unwrap_or("reserved"),
                placed.attempts
            );
            std::process::ExitCode::SUCCESS
        }
        Err(Error::Refused(problem)) => {
            println!("refused: {} ({})", problem.code, problem.detail);
            std::process::ExitCode::from(1)
        }
        Err(e) => {
            eprintln!(
                "{e} (idempotency key {idempotency_key}: retry with it to learn the outcome)"
            );
            std::process::ExitCode::from(2)
        }
    }
}
