//! The product-neutral core of the facades: the shared state ([`Facade`]), how callers are
//! verified (JWT users in [`auth`], organization API and SCIM keys in [`keys`]), the per-call
//! runners and what a call works with ([`runner`]), typed records and the one atomic write of
//! a call ([`records`]), errors, the built-in schema and bootstrap tuples, role bindings
//! ([`bindings`]), the object graph of an organization ([`graph`]), users, and organizations
//! with what every product needs of them: creation, the delete cascade, members joining and
//! leaving, suspension ([`organizations`]).
//!
//! A product ([`Product`]) registers its routes, its roles, and the record clean-up it needs
//! when an organization is deleted or a member leaves. Products depend on the core and never
//! on each other.

pub mod auth;
pub mod bindings;
pub mod bootstrap;
pub mod error;
pub mod fields;
pub mod graph;
pub mod keys;
pub mod organizations;
pub mod records;
pub mod roles;
pub mod runner;
pub mod users;

use std::sync::Arc;

use axum::routing::MethodRouter;

use crate::engine::{Admission, Engine};
use crate::revision::Revision;
use auth::{JwtSettings, TokenVerifier};
use bootstrap::SchemaOutcome;
use error::FacadeError;
use keys::KeyRing;
use records::Tx;
use roles::Role;
use runner::Cx;

/// How the facades are configured.
#[derive(Debug, Clone)]
pub struct FacadeConfig {
    /// Bearer-token keys and required claims.
    pub jwt: JwtSettings,
    /// User ids that get `app/platform:platform#admin`.
    pub superusers: Vec<String>,
    /// Organizations one user may have created and not deleted (superusers are not
    /// limited; 0 = no limit).
    pub max_orgs_per_user: usize,
}

impl Default for FacadeConfig {
    fn default() -> Self {
        Self {
            jwt: JwtSettings {
                leeway_secs: DEFAULT_JWT_LEEWAY_SECS,
                ..JwtSettings::default()
            },
            superusers: Vec::new(),
            max_orgs_per_user: DEFAULT_MAX_ORGS_PER_USER,
        }
    }
}

impl FacadeConfig {
    /// HS256 tokens signed with `secret`, nothing else changed from the defaults.
    pub fn with_secret(secret: &str) -> Self {
        let mut config = Self::default();
        config.jwt.secret = Some(secret.to_string());
        config
    }
}

/// Default seconds of clock skew allowed on a token's `exp` and `nbf`.
pub const DEFAULT_JWT_LEEWAY_SECS: u64 = 30;
/// Default number of organizations a user may have created.
pub const DEFAULT_MAX_ORGS_PER_USER: usize = 100;

/// Why the facade could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// An unusable key or secret.
    #[error(transparent)]
    Key(#[from] auth::KeyError),
    /// No key was configured.
    #[error("the facade needs --jwt-secret, --jwt-public-key or --jwt-jwks")]
    NoKey,
    /// Schema or bootstrap tuples.
    #[error(transparent)]
    Bootstrap(#[from] bootstrap::BootstrapError),
}

/// Called with the revision of every committed facade write (e.g. to wake watch streams).
pub type OnCommit = Box<dyn Fn(Revision) + Send + Sync>;

/// A record clean-up step of a product, run inside the write of the act that needs it.
pub type Cascade = fn(&Cx<'_>, &mut Tx, &Cascading<'_>) -> Result<(), FacadeError>;

/// What a [`Cascade`] step is run for.
#[derive(Debug, Clone, Copy)]
pub enum Cascading<'a> {
    /// The organization is being deleted (its tuples are removed by the core).
    Organization(&'a str),
    /// The user is leaving the organization `org` (their tuples there are removed by the
    /// core).
    Member {
        /// The organization.
        org: &'a str,
        /// The user.
        user: &'a str,
    },
}

/// Routes as `(path, handlers)` pairs, the one list a router is built from.
pub type Routes = Vec<(String, MethodRouter<Arc<Facade>>)>;

/// What a product adds to the core.
pub struct Product {
    /// A short name, for logs.
    pub name: &'static str,
    /// The roles of the product's resource types.
    pub roles: &'static [Role],
    /// The product's routes: each path with its handlers, before the state is applied (so
    /// the paths can be listed without a running facade, see [`crate::facade::paths`]).
    pub routes: fn() -> Routes,
    /// Removes the product's records when an organization is deleted or a member leaves.
    pub cascade: Cascade,
}

impl std::fmt::Debug for Product {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Product").field("name", &self.name).finish()
    }
}

/// What the composition hands the core at start.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// The built-in schema text.
    pub schema: &'static str,
    /// Earlier built-in schema texts, upgraded to `schema` at start.
    pub previous: &'static [&'static str],
    /// The products served.
    pub products: &'static [&'static Product],
}

/// The facades' shared state.
pub struct Facade {
    engine: Arc<Engine>,
    verifier: TokenVerifier,
    keys: KeyRing,
    max_orgs_per_user: usize,
    roles: Vec<&'static Role>,
    products: &'static [&'static Product],
    on_commit: OnCommit,
    /// The concurrency bound and read deadline its calls run under (shared with `/v1`).
    admission: Arc<Admission>,
}

impl std::fmt::Debug for Facade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Facade")
            .field("verifier", &self.verifier)
            .field("products", &self.products)
            .finish_non_exhaustive()
    }
}

impl Facade {
    /// Loads (or checks, or upgrades) the built-in schema, writes the roles' and superusers'
    /// tuples, loads the deployment's key ring, and returns the facade with what happened to
    /// the schema. Blocking.
    pub fn start(
        engine: Arc<Engine>,
        config: &FacadeConfig,
        setup: Setup,
        on_commit: OnCommit,
    ) -> Result<(Self, SchemaOutcome), StartError> {
        if !config.jwt.has_key() {
            return Err(StartError::NoKey);
        }
        let verifier = TokenVerifier::new(&config.jwt)?;
        let outcome = bootstrap::ensure_schema(&engine, setup.schema, setup.previous)?;
        let roles: Vec<&'static Role> = roles::ORG_ROLES
            .iter()
            .chain(setup.products.iter().flat_map(|p| p.roles.iter()))
            .collect();
        let revision = bootstrap::bootstrap_tuples(&engine, &roles, &config.superusers)
            .map_err(bootstrap::BootstrapError::from)?;
        if let Some(revision) = revision {
            on_commit(revision);
        }
        let keys = KeyRing::load_or_create(&engine).map_err(bootstrap::BootstrapError::from)?;
        Ok((
            Self {
                engine,
                verifier,
                keys,
                max_orgs_per_user: config.max_orgs_per_user,
                roles,
                products: setup.products,
                on_commit,
                admission: Arc::new(Admission::unbounded()),
            },
            outcome,
        ))
    }

    /// Runs every call under `admission` (the server shares `/v1`'s): past its bound a call
    /// is refused at once with 429, and reads stop at its deadline.
    pub fn bounded_by(mut self, admission: Arc<Admission>) -> Self {
        self.admission = admission;
        self
    }

    /// The products served.
    pub fn products(&self) -> &'static [&'static Product] {
        self.products
    }

    /// Every predefined role (the core's and the products').
    pub fn roles(&self) -> &[&'static Role] {
        &self.roles
    }

    /// The role called `name` (also accepted as `app/role:<name>`).
    pub fn role(&self, name: &str) -> Option<&'static Role> {
        let name = roles::bare(name);
        self.roles.iter().copied().find(|role| role.name == name)
    }

    /// The role called `name`, which the facade itself relies on (500 when missing: a bug).
    pub fn known_role(&self, name: &str) -> Result<&'static Role, FacadeError> {
        self.role(name).ok_or_else(|| {
            FacadeError::Internal(format!("the predefined role `{name}` is missing"))
        })
    }

    /// The organization keys' ring (verifies presented keys, mints new ones).
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Runs every product's clean-up for `what`.
    pub fn cascade(
        &self,
        cx: &Cx<'_>,
        tx: &mut Tx,
        what: &Cascading<'_>,
    ) -> Result<(), FacadeError> {
        for product in self.products {
            (product.cascade)(cx, tx, what)?;
        }
        Ok(())
    }
}
