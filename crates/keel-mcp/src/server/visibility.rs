//! Visibility: which tools, resources, templates and prompts a caller may see — one predicate that decides
//! both what the lists show and whether a call, read or get is allowed, so the two never disagree. A target
//! hidden from a caller does not exist for it: an unknown tool, a resource not found, an unknown prompt.

use std::fmt;
use std::sync::Arc;

use super::context::{ClientChannel, principal_of};
use super::principal::Principal;
use crate::protocol::ProtocolVersion;
use crate::protocol::prompts::Prompt;
use crate::protocol::resources::{Resource, ResourceTemplate};
use crate::protocol::tools::Tool;

/// Who is asking, as the visibility predicate sees it.
pub struct Viewer<'a> {
    client: &'a dyn ClientChannel,
    version: &'a ProtocolVersion,
}

impl<'a> Viewer<'a> {
    pub(crate) fn new(client: &'a dyn ClientChannel, version: &'a ProtocolVersion) -> Self {
        Viewer { client, version }
    }

    /// The verified caller, when an authorization layer in front of the HTTP service put one in the request
    /// (as [`RequestContext::principal`](super::RequestContext::principal)).
    pub fn principal(&self) -> Option<&'a Principal> {
        principal_of(self.client)
    }

    /// The revision the request speaks.
    pub fn protocol_version(&self) -> &'a ProtocolVersion {
        self.version
    }

    /// The HTTP request the MCP request came in, if it came over HTTP.
    #[cfg(feature = "http-server")]
    pub fn http_request(&self) -> Option<&'a http::request::Parts> {
        self.client.http_request()
    }
}

impl fmt::Debug for Viewer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Viewer")
            .field("principal", &self.principal())
            .field("protocol_version", self.version)
            .finish_non_exhaustive()
    }
}

/// What the visibility predicate decides on: a definition as the lists show it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Target<'a> {
    /// A tool (`tools/list`, `tools/call`).
    Tool(&'a Tool),
    /// A resource with a fixed URI (`resources/list`, `resources/read`, `resources/subscribe`).
    Resource(&'a Resource),
    /// A resource template (`resources/templates/list`, and reads and completions of URIs it matches).
    Template(&'a ResourceTemplate),
    /// A prompt (`prompts/list`, `prompts/get`, `completion/complete`).
    Prompt(&'a Prompt),
}

impl Target<'_> {
    /// The tool, resource, template or prompt's `name`.
    pub fn name(&self) -> &str {
        match self {
            Target::Tool(tool) => &tool.name,
            Target::Resource(resource) => &resource.name,
            Target::Template(template) => &template.name,
            Target::Prompt(prompt) => &prompt.name,
        }
    }
}

/// The predicate [`ServerBuilder::visibility`](super::ServerBuilder::visibility) installs.
#[derive(Clone)]
pub(crate) struct Predicate(pub(crate) Arc<PredicateFn>);

type PredicateFn = dyn Fn(&Viewer<'_>, Target<'_>) -> bool + Send + Sync;

impl fmt::Debug for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Predicate")
    }
}

impl Predicate {
    /// Whether `viewer` may see `target`.
    pub(crate) fn allows(&self, viewer: &Viewer<'_>, target: Target<'_>) -> bool {
        (self.0)(viewer, target)
    }
}
