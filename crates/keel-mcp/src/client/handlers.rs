//! What the client does when the server asks something of it: sampling, elicitation and roots requests
//! (legacy server-initiated requests, and modern input requests inside input-required results), and the
//! notifications the server sends (logging, list changes, resource updates).
//!
//! Handlers are registered on the [`ClientBuilder`](super::ClientBuilder); registering one declares the
//! matching capability.

use std::future::Future;
use std::sync::Arc;

use serde_json::value::RawValue;

use crate::engine::{BoxFuture, Handler, Inbound, Peer};
use crate::protocol::elicitation::ElicitAction;
use crate::protocol::jsonrpc::{RawNotification, RawRequest};
use crate::protocol::lifecycle::{EmptyResult, PingParams};
use crate::protocol::logging::LoggingMessageParams;
use crate::protocol::mrtr::{InputRequest, InputResponse};
use crate::protocol::resources::ResourceUpdatedParams;
use crate::protocol::{
    CreateMessageParams, CreateMessageResult, ElicitParams, ElicitResult, ErrorObject, ListRootsParams,
    ListRootsResult, Notification, ProgressParams, Request, decode_params,
};

type Callback<P, R> = Arc<dyn Fn(P) -> BoxFuture<Result<R, ErrorObject>> + Send + Sync>;

/// A notification from the server, decoded by method.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ServerNotification {
    /// `notifications/message`: a log message.
    Log(LoggingMessageParams),
    /// `notifications/tools/list_changed`.
    ToolListChanged,
    /// `notifications/prompts/list_changed`.
    PromptListChanged,
    /// `notifications/resources/list_changed`.
    ResourceListChanged,
    /// `notifications/resources/updated`: a subscribed resource changed.
    ResourceUpdated(ResourceUpdatedParams),
    /// `notifications/progress` that no request of this client asked for.
    Progress(ProgressParams),
    /// Any other notification, raw.
    Other(RawNotification),
}

impl ServerNotification {
    fn decode(raw: RawNotification) -> ServerNotification {
        let params = raw.params.as_deref();
        match raw.method.as_str() {
            LoggingMessageParams::METHOD => decode_params(params).map(ServerNotification::Log).ok(),
            "notifications/tools/list_changed" => Some(ServerNotification::ToolListChanged),
            "notifications/prompts/list_changed" => Some(ServerNotification::PromptListChanged),
            "notifications/resources/list_changed" => Some(ServerNotification::ResourceListChanged),
            ResourceUpdatedParams::METHOD => decode_params(params).map(ServerNotification::ResourceUpdated).ok(),
            ProgressParams::METHOD => decode_params(params).map(ServerNotification::Progress).ok(),
            _ => None,
        }
        .unwrap_or(ServerNotification::Other(raw))
    }
}

/// The client's handlers, shared by the engine (legacy requests) and the input-required loop (modern).
#[derive(Clone, Default)]
pub(crate) struct Handlers {
    pub(crate) sampling: Option<Callback<CreateMessageParams, CreateMessageResult>>,
    pub(crate) elicitation: Option<Callback<ElicitParams, ElicitResult>>,
    pub(crate) roots: Option<Callback<ListRootsParams, ListRootsResult>>,
    pub(crate) notification: Option<Arc<dyn Fn(ServerNotification) -> BoxFuture<()> + Send + Sync>>,
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handlers")
            .field("sampling", &self.sampling.is_some())
            .field("elicitation", &self.elicitation.is_some())
            .field("roots", &self.roots.is_some())
            .field("notification", &self.notification.is_some())
            .finish()
    }
}

pub(crate) fn callback<P, R, F, Fut>(f: F) -> Callback<P, R>
where
    F: Fn(P) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, ErrorObject>> + Send + 'static,
{
    Arc::new(move |p| Box::pin(f(p)))
}

impl Handlers {
    pub(crate) async fn sample(&self, params: CreateMessageParams) -> Result<CreateMessageResult, ErrorObject> {
        match &self.sampling {
            Some(f) => f(params).await,
            None => Err(ErrorObject::method_not_found(CreateMessageParams::METHOD)),
        }
    }

    /// Asks the user; on accept, fills the fields they left out with the schema's defaults (SEP-1034).
    pub(crate) async fn elicit(&self, params: ElicitParams) -> Result<ElicitResult, ErrorObject> {
        let Some(f) = &self.elicitation else {
            return Err(ErrorObject::method_not_found(ElicitParams::METHOD));
        };
        let schema = params.requested_schema.clone();
        let mut result = f(params).await?;
        if result.action == ElicitAction::Accept
            && let Some(schema) = schema
        {
            schema.apply_defaults(result.content.get_or_insert_with(Default::default));
        }
        Ok(result)
    }

    pub(crate) async fn list_roots(&self, params: ListRootsParams) -> Result<ListRootsResult, ErrorObject> {
        match &self.roots {
            Some(f) => f(params).await,
            None => Err(ErrorObject::method_not_found(ListRootsParams::METHOD)),
        }
    }

    /// Answers one input request of an input-required result.
    pub(crate) async fn fulfil(&self, request: InputRequest) -> Result<InputResponse, ErrorObject> {
        Ok(match request {
            InputRequest::Elicit(p) => InputResponse::Elicit(self.elicit(p).await?),
            InputRequest::CreateMessage(p) => InputResponse::CreateMessage(self.sample(p).await?),
            InputRequest::ListRoots(p) => InputResponse::ListRoots(self.list_roots(p.unwrap_or_default()).await?),
            InputRequest::Other { method, .. } => return Err(ErrorObject::method_not_found(&method)),
        })
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Box<RawValue>, ErrorObject> {
    serde_json::value::to_raw_value(value).map_err(|e| ErrorObject::internal(e.to_string()))
}

/// The engine-facing side: answers legacy server-initiated requests and routes notifications.
pub(crate) struct ClientHandler {
    pub(crate) handlers: Handlers,
}

impl Handler for ClientHandler {
    fn handle_request(&self, request: RawRequest, inbound: Inbound) -> BoxFuture<Result<Box<RawValue>, ErrorObject>> {
        let handlers = self.handlers.clone();
        #[cfg(feature = "otel")]
        let operation = crate::telemetry::server::ServerOperation::answered_by_client(&request, &inbound);
        #[cfg(not(feature = "otel"))]
        let _ = inbound;
        let handling = async move {
            let params = request.params.as_deref();
            match request.method.as_str() {
                PingParams::METHOD => {
                    decode_params::<PingParams>(params)?;
                    encode(&EmptyResult::default())
                }
                CreateMessageParams::METHOD => encode(&handlers.sample(decode_params(params)?).await?),
                ElicitParams::METHOD => encode(&handlers.elicit(decode_params(params)?).await?),
                ListRootsParams::METHOD => encode(&handlers.list_roots(decode_params(params)?).await?),
                other => Err(ErrorObject::method_not_found(other)),
            }
        };
        #[cfg(feature = "otel")]
        if let Some(operation) = operation {
            return Box::pin(operation.run(handling));
        }
        Box::pin(handling)
    }

    fn handle_notification(&self, notification: RawNotification, _peer: Peer) -> BoxFuture<()> {
        match &self.handlers.notification {
            Some(f) => f(ServerNotification::decode(notification)),
            None => {
                tracing::debug!(method = %notification.method, "notification from the server");
                Box::pin(std::future::ready(()))
            }
        }
    }
}
