//! `loadtest shop`: the reference shop in front of a sale with a waiting room. It serves
//! the shopper's page (`loadtest/shop/`: static HTML, CSS and JavaScript, no build step)
//! and, as a shop's backend would, signs the page's calls with the shop's key and forwards
//! them to ingest-api, answering with ingest-api's status and JSON body (a problem's
//! `Retry-After` added as `retryAfter`; 502 when ingest-api cannot be reached): the page
//! never holds a signing key. It serves one product (another in the path is 404). A shop
//! in production would also pass the shopper's address on (`X-Forwarded-For`, with the
//! shop in the API's `TRUSTED_PROXIES`); this one does not, so its shoppers share its
//! address's limits.
//!
//! | the page calls | the shop sends (`ingest-api/API.md`, "Waiting room") |
//! |---|---|
//! | `GET /shop/sale` | nothing: `{"productId", "title"}` of the sale it sells |
//! | `POST /shop/{p}/join` `{userId, device}` | signed `POST /queue/{p}/join` |
//! | `POST /shop/{p}/status` `{ticket, device}` | `GET /queue/{p}/status` |
//! | `POST /shop/{p}/claim` `{userId, device, ticket}` | signed `POST /queue/{p}/claim` |
//! | `POST /shop/{p}/order` `{userId, device, admission, key}` | signed `POST /order` with `X-Admission-Token`, under `key` |

use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use clap::Args;
use flashsale_client::{Answer, Client};
use serde::Deserialize;

use super::Target;

/// Arguments of `shop`.
#[derive(Args)]
pub struct ShopArgs {
    #[command(flatten)]
    pub target: Target,
    /// Where the shop listens.
    #[arg(long, default_value = "127.0.0.1:8088")]
    pub listen: std::net::SocketAddr,
    /// The product it sells.
    #[arg(long)]
    pub product: String,
    /// The name the page shows (default: the product id).
    #[arg(long)]
    pub title: Option<String>,
}

struct Shop {
    api: Client,
    product: String,
    title: String,
}

/// Serves the page and its calls until stopped.
pub async fn run(args: ShopArgs) -> anyhow::Result<bool> {
    let shop = web::Data::new(Shop {
        api: args.target.client()?,
        title: args.title.unwrap_or_else(|| args.product.clone()),
        product: args.product,
    });
    eprintln!("shop for {} on http://{}/", shop.product, args.listen);
    HttpServer::new(move || {
        App::new()
            .app_data(shop.clone())
            .route("/", web::get().to(|| file("text/html", PAGE)))
            .route(
                "/shop.js",
                web::get().to(|| file("text/javascript", SCRIPT)),
            )
            .route("/shop.css", web::get().to(|| file("text/css", STYLE)))
            .route("/shop/sale", web::get().to(sale))
            .route("/shop/{product}/join", web::post().to(join))
            .route("/shop/{product}/status", web::post().to(status))
            .route("/shop/{product}/claim", web::post().to(claim))
            .route("/shop/{product}/order", web::post().to(order))
    })
    .workers(2)
    .bind(args.listen)?
    .run()
    .await?;
    Ok(true)
}

const PAGE: &str = include_str!("../../shop/index.html");
const SCRIPT: &str = include_str!("../../shop/shop.js");
const STYLE: &str = include_str!("../../shop/shop.css");

async fn file(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(format!("{content_type}; charset=utf-8"))
        .insert_header(("cache-control", "no-store"))
        .body(body)
}

async fn sale(shop: web::Data<Shop>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "productId": shop.product,
        "title": shop.title,
    }))
}

/// What the page sends: the shopper, their device, what the line gave them so far, and
/// the idempotency key of its order (the same on every retry of it).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Call {
    #[serde(default)]
    user_id: String,
    device: String,
    #[serde(default)]
    ticket: String,
    #[serde(default)]
    admission: String,
    #[serde(default)]
    key: String,
}

/// The 404 for a product the shop does not sell: it signs for its own sale only.
fn not_ours(shop: &Shop, product: &str) -> Option<HttpResponse> {
    (product != shop.product).then(|| {
        HttpResponse::NotFound().json(serde_json::json!({
            "title": "Not sold here",
            "detail": format!("this shop sells {}", shop.product),
        }))
    })
}

/// ingest-api's answer as the page gets it: its status, its JSON body (a problem's
/// `Retry-After` copied into the body as `retryAfter`, for the page's next try).
fn forward(answer: reqwest::Result<Answer>) -> HttpResponse {
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            return HttpResponse::BadGateway().json(serde_json::json!({
                "title": "The sale cannot be reached",
                "detail": e.to_string(),
            }));
        }
    };
    let mut body = answer.json();
    if let (Some(secs), Some(object)) = (answer.retry_after_secs(), body.as_object_mut()) {
        object.insert("retryAfter".into(), secs.into());
    }
    HttpResponse::build(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY))
        .json(body)
}

async fn join(shop: web::Data<Shop>, p: web::Path<String>, call: web::Json<Call>) -> HttpResponse {
    if let Some(refused) = not_ours(&shop, &p) {
        return refused;
    }
    forward(shop.api.join(&p, &call.user_id, &call.device).await)
}

/// A poll, sent in the body: a ticket in a URL would land in histories and access logs.
async fn status(
    shop: web::Data<Shop>,
    p: web::Path<String>,
    call: web::Json<Call>,
) -> HttpResponse {
    if let Some(refused) = not_ours(&shop, &p) {
        return refused;
    }
    forward(shop.api.queue_status(&p, &call.ticket, &call.device).await)
}

async fn claim(shop: web::Data<Shop>, p: web::Path<String>, call: web::Json<Call>) -> HttpResponse {
    if let Some(refused) = not_ours(&shop, &p) {
        return refused;
    }
    let claimed = shop
        .api
        .claim(&p, &call.user_id, &call.ticket, &call.device);
    forward(claimed.await)
}

async fn order(shop: web::Data<Shop>, p: web::Path<String>, call: web::Json<Call>) -> HttpResponse {
    if let Some(refused) = not_ours(&shop, &p) {
        return refused;
    }
    let body = Client::body(&p, &call.user_id, 1);
    let key = if call.key.is_empty() {
        flashsale_client::new_key()
    } else {
        call.key.clone()
    };
    let placed = shop
        .api
        .place_admitted(&body, &key, &call.device, &call.admission);
    forward(placed.await)
}
