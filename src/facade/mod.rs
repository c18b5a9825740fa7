//! The facades: group-management APIs of two products served as thin layers over the
//! engine, on one product-neutral core.
//!
//! - [`core`]: the shared state, caller verification (JWT users, organization API and SCIM
//!   keys), the per-call runners (one atomic engine transaction per write, built from reads
//!   of the head inside it), records, errors, role bindings, organizations and their
//!   cascades, the built-in schema.
//! - [`frontier`]: the Frontier-style `/v1beta1` API (organizations, groups, projects,
//!   custom resources, roles, policies).
//! - [`vault`]: the Bitwarden-style `/api`, `/public` and SCIM 2.0 APIs (groups holding
//!   collection access, members, directory sync).
//!
//! The products depend on the core, never on each other; this module composes them.

pub mod core;
pub mod frontier;
pub mod vault;

use std::sync::Arc;

use axum::Router;

pub use self::core::auth;
pub use self::core::bootstrap::SchemaOutcome;
pub use self::core::error::FacadeError;
pub use self::core::runner::TOKEN_HEADER;
pub use self::core::{Facade, FacadeConfig, OnCommit, Product, StartError};
use crate::engine::Engine;

/// The built-in schema: `schema/frontier.zed` followed by `schema/vault.zed`.
pub const BUILTIN_SCHEMA: &str = concat!(
    include_str!("../../schema/frontier.zed"),
    "\n",
    include_str!("../../schema/vault.zed")
);

/// Earlier built-in schemas, upgraded to [`BUILTIN_SCHEMA`] at start
/// (`schema/history/`).
pub const PREVIOUS_SCHEMAS: &[&str] = &[include_str!("../../schema/history/builtin-1.zed")];

/// The products served, in route order.
pub const PRODUCTS: &[&Product] = &[&frontier::PRODUCT, &vault::PRODUCT];

/// Starts the facades over `engine` (see [`Facade::start`]). Blocking.
pub fn start(
    engine: Arc<Engine>,
    config: &FacadeConfig,
    on_commit: OnCommit,
) -> Result<(Facade, SchemaOutcome), StartError> {
    let setup = self::core::Setup {
        schema: BUILTIN_SCHEMA,
        previous: PREVIOUS_SCHEMAS,
        products: PRODUCTS,
    };
    Facade::start(engine, config, setup, on_commit)
}

/// Every product's routes, their state applied, to be merged beside the `/v1` API.
pub fn router(facade: Arc<Facade>) -> Router {
    facade
        .products()
        .iter()
        .flat_map(|product| (product.routes)())
        .fold(Router::new(), |router, (path, handlers)| {
            router.route(&path, handlers)
        })
        .with_state(facade)
}

/// The path of every route [`router`] serves (for the OpenAPI check), from the same lists.
pub fn paths() -> Vec<String> {
    PRODUCTS
        .iter()
        .flat_map(|product| (product.routes)())
        .map(|(path, _)| path)
        .collect()
}
