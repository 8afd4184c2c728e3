//! Resources: fixed URIs and RFC 6570 templates, each with the function that reads it.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use super::context::RequestContext;
use super::error::HandlerError;
use super::uri_template::{TemplateError, UriTemplate};
use crate::engine::BoxFuture;
use crate::protocol::ResourceContents;
use crate::protocol::display::{Annotations, Icon};
use crate::protocol::resources::{Resource, ResourceTemplate};

/// Variable values of a matched resource template.
pub type TemplateVars = BTreeMap<String, String>;

/// Converts what a read function returns into resource contents.
///
/// A read function returns `ResourceContents`, `Vec<ResourceContents>`, `Option` of either, or a
/// `Result` of any of these. "Not found" — `None`, an empty `Vec`, or `Err(HandlerError::not_found())` —
/// answers the revision's resource-not-found error (-32002 before 2026-07-28, -32602 from it on, both
/// with `data.uri`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a resource read function",
    label = "return `ResourceContents`, `Vec<ResourceContents>`, an `Option` of either, or a `Result` of these",
    note = "build contents with `ResourceContents::text(uri, mime, text)` or `ResourceContents::blob(..)`; \
            return `None` or `Err(HandlerError::not_found())` when the resource does not exist"
)]
pub trait IntoContents {
    /// The contents.
    fn into_contents(self) -> Result<Vec<ResourceContents>, HandlerError>;
}

impl IntoContents for ResourceContents {
    fn into_contents(self) -> Result<Vec<ResourceContents>, HandlerError> {
        Ok(vec![self])
    }
}

impl IntoContents for Vec<ResourceContents> {
    fn into_contents(self) -> Result<Vec<ResourceContents>, HandlerError> {
        Ok(self)
    }
}

/// `None` is "not found".
impl<T: IntoContents> IntoContents for Option<T> {
    fn into_contents(self) -> Result<Vec<ResourceContents>, HandlerError> {
        self.ok_or(HandlerError::NotFound)?.into_contents()
    }
}

impl<T: IntoContents, E: Into<HandlerError>> IntoContents for Result<T, E> {
    fn into_contents(self) -> Result<Vec<ResourceContents>, HandlerError> {
        self.map_err(Into::into)?.into_contents()
    }
}

pub(crate) type ErasedRead = Arc<
    dyn Fn(RequestContext, String, TemplateVars) -> BoxFuture<Result<Vec<ResourceContents>, HandlerError>>
        + Send
        + Sync,
>;

/// A resource with a fixed URI.
#[derive(Clone)]
pub struct ResourceDef {
    pub(crate) resource: Resource,
    pub(crate) read: ErasedRead,
    /// OAuth scopes a caller needs (all of them).
    pub(crate) scopes: Vec<String>,
}

impl std::fmt::Debug for ResourceDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceDef").field("resource", &self.resource).finish_non_exhaustive()
    }
}

impl ResourceDef {
    /// A resource read by `read(ctx, uri)`.
    pub fn new<F, Fut, R>(uri: impl Into<String>, name: impl Into<String>, read: F) -> Self
    where
        F: Fn(RequestContext, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoContents,
    {
        let read: ErasedRead = Arc::new(move |ctx, uri, _vars| {
            let fut = read(ctx, uri);
            Box::pin(async move { fut.await.into_contents() })
        });
        ResourceDef { resource: Resource::new(uri, name), read, scopes: Vec::new() }
    }

    /// A resource whose content is fixed text.
    pub fn text(uri: impl Into<String>, name: impl Into<String>, mime_type: &str, text: impl Into<String>) -> Self {
        let text: Arc<str> = text.into().into();
        let mime: Arc<str> = mime_type.into();
        Self::new(uri, name, move |_, uri| {
            let contents = ResourceContents::text(uri, Some(&mime), text.as_ref());
            std::future::ready(contents)
        })
        .mime_type(mime_type)
    }

    /// A resource whose content is fixed binary data (base64).
    pub fn blob(uri: impl Into<String>, name: impl Into<String>, mime_type: &str, base64: impl Into<String>) -> Self {
        let blob: Arc<str> = base64.into().into();
        let mime: Arc<str> = mime_type.into();
        Self::new(uri, name, move |_, uri| std::future::ready(ResourceContents::blob(uri, Some(&mime), blob.as_ref())))
            .mime_type(mime_type)
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.resource.description = Some(description.into());
        self
    }

    /// Requires these OAuth scopes of the caller (all of them): over HTTP, a caller whose token lacks one is
    /// refused with 403 `insufficient_scope` naming every scope needed, and lists leave this resource out
    /// (see [`auth::resource`](crate::auth::resource)). Requests over stdio, a child process or in memory
    /// carry no token and are not checked.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the display title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.resource.title = Some(title.into());
        self
    }

    /// Sets the MIME type.
    pub fn mime_type(mut self, mime_type: impl Into<String>) -> Self {
        self.resource.mime_type = Some(mime_type.into());
        self
    }

    /// Sets the size in bytes.
    pub fn size(mut self, size: u64) -> Self {
        self.resource.size = Some(size);
        self
    }

    /// Sets annotations.
    pub fn annotations(mut self, annotations: Annotations) -> Self {
        self.resource.annotations = Some(annotations);
        self
    }

    /// Sets icons.
    pub fn icons(mut self, icons: Vec<Icon>) -> Self {
        self.resource.icons = Some(icons);
        self
    }

    /// The protocol description.
    pub fn resource(&self) -> &Resource {
        &self.resource
    }
}

/// A family of resources addressed by a URI template.
#[derive(Clone)]
pub struct TemplateDef {
    pub(crate) template: ResourceTemplate,
    pub(crate) matcher: UriTemplate,
    pub(crate) read: ErasedRead,
    /// OAuth scopes a caller needs (all of them) to read what the template matches.
    pub(crate) scopes: Vec<String>,
}

impl std::fmt::Debug for TemplateDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateDef").field("template", &self.template).finish_non_exhaustive()
    }
}

impl TemplateDef {
    /// A template read by `read(ctx, uri, vars)`; fails when `uri_template` is not a valid template.
    pub fn try_new<F, Fut, R>(uri_template: &str, name: impl Into<String>, read: F) -> Result<Self, TemplateError>
    where
        F: Fn(RequestContext, String, TemplateVars) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoContents,
    {
        let matcher = UriTemplate::parse(uri_template)?;
        let read: ErasedRead = Arc::new(move |ctx, uri, vars| {
            let fut = read(ctx, uri, vars);
            Box::pin(async move { fut.await.into_contents() })
        });
        let template =
            ResourceTemplate { uri_template: uri_template.to_owned(), name: name.into(), ..Default::default() };
        Ok(TemplateDef { template, matcher, read, scopes: Vec::new() })
    }

    /// Like [`TemplateDef::try_new`], for templates written in the source.
    ///
    /// # Panics
    /// When `uri_template` is not a valid URI template.
    pub fn new<F, Fut, R>(uri_template: &str, name: impl Into<String>, read: F) -> Self
    where
        F: Fn(RequestContext, String, TemplateVars) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoContents,
    {
        Self::try_new(uri_template, name, read).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.template.description = Some(description.into());
        self
    }

    /// Requires these OAuth scopes of the caller (all of them): over HTTP, a caller whose token lacks one is
    /// refused with 403 `insufficient_scope` naming every scope needed, and lists leave this template out
    /// (see [`auth::resource`](crate::auth::resource)). Requests over stdio, a child process or in memory
    /// carry no token and are not checked.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the display title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.template.title = Some(title.into());
        self
    }

    /// Sets the MIME type of the resources.
    pub fn mime_type(mut self, mime_type: impl Into<String>) -> Self {
        self.template.mime_type = Some(mime_type.into());
        self
    }

    /// The protocol description.
    pub fn template(&self) -> &ResourceTemplate {
        &self.template
    }
}
