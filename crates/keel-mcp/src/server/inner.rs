//! [`ServerInner`]: what every connection and request of one server shares — its identity and capabilities,
//! the catalog of tools, resources and prompts, limits and shared state. Built once by the builder in
//! `mod.rs`; everything below reads it.

use std::sync::{Arc, RwLock};

use tokio::sync::broadcast;

use super::catalog::{Catalog, Change};
use super::input::StateSealer;
use super::middleware::Next;
use super::state::StateMap;
#[cfg(feature = "tasks")]
use super::tasks::TaskStore;
use super::visibility::Predicate;
use crate::Limits;
use crate::protocol::capabilities::ServerCapabilities;
use crate::protocol::{CacheHint, Implementation, ProtocolVersion};

/// One server's shared state; a [`Server`](super::Server) is a handle to it.
#[derive(Debug)]
pub(crate) struct ServerInner {
    pub(crate) info: Implementation,
    /// `info` as JSON, encoded once for the `serverInfo` every modern result carries.
    pub(crate) info_json: serde_json::Value,
    /// `"_meta":{"io.modelcontextprotocol/serverInfo":…}`, spliced into modern results that have no `_meta`.
    pub(crate) server_info_meta: String,
    pub(crate) instructions: Option<String>,
    pub(crate) capabilities: ServerCapabilities,
    pub(super) catalog: RwLock<Arc<Catalog>>,
    pub(crate) changes: broadcast::Sender<Change>,
    pub(crate) limits: Limits,
    pub(crate) versions: Vec<ProtocolVersion>,
    pub(crate) cache_hint: CacheHint,
    pub(crate) page_size: usize,
    pub(crate) sealer: StateSealer,
    /// Values shared with every handler ([`ServerBuilder::state`](super::ServerBuilder::state)).
    pub(crate) states: Arc<StateMap>,
    #[cfg(feature = "tasks")]
    pub(crate) tasks: Arc<TaskStore>,
    /// The server-wide operation layers ([`ServerBuilder::layer`](super::ServerBuilder::layer)).
    pub(crate) middleware: Option<Next>,
    /// Who may see what ([`ServerBuilder::visibility`](super::ServerBuilder::visibility)).
    pub(crate) visibility: Option<Predicate>,
}

impl ServerInner {
    /// The current catalog.
    pub(crate) fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().expect("catalog lock").clone()
    }

    /// Swaps in an edited copy of the catalog (requests in flight keep the one they started with), then
    /// tells the listeners.
    pub(super) fn change(&self, edit: impl FnOnce(&mut Catalog), announce: Change) {
        {
            let mut current = self.catalog.write().expect("catalog lock");
            let mut next = Catalog::clone(&current);
            edit(&mut next);
            *current = Arc::new(next.reindex());
        }
        // No listener is fine: nobody to tell.
        let _ = self.changes.send(announce);
    }
}
