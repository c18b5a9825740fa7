//! The ceiling of the HTTP stack on this machine: an axum server whose one endpoint answers a
//! fixed JSON body, measured with the same load tool as zanzi (see `scripts/http-load`).

use axum::routing::post;
use axum::Router;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8500".to_string());
    let app = Router::new().route(
        "/v1/permissions/check",
        post(|| async { r#"{"permissionship":"PERMISSIONSHIP_HAS_PERMISSION"}"# }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("ceiling server on http://{addr}");
    axum::serve(listener, app).await
}
