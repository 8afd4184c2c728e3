//! [`RequestContext`]: what a handler gets besides its arguments — cancellation, progress, logging, and the
//! way back to the client, whichever transport and era the request came on.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::value::RawValue;

use crate::engine::CancellationToken;

use super::error::HandlerError;
use super::input::{self, InputRound};
use super::principal::Principal;
use super::state::StateMap;
#[cfg(feature = "tasks")]
use super::tasks::TaskSlot;
use crate::protocol::elicitation::{ElicitMode, ElicitParams, ElicitResult};
use crate::protocol::jsonrpc::code;
use crate::protocol::roots::ListRootsResult;
use crate::protocol::sampling::{CreateMessageParams, CreateMessageResult};
use crate::protocol::{ErrorObject, InputRequest, InputResponse};

use crate::engine::Peer;
use crate::error::Error;
use crate::protocol::capabilities::ClientCapabilities;
use crate::protocol::jsonrpc;
use crate::protocol::logging::{LoggingLevel, LoggingMessageParams};
use crate::protocol::progress::ProgressParams;
use crate::protocol::{Notification, ProgressToken, ProtocolVersion, Request, RequestId};

/// The way back to the client, as the context sees it: the stream connection's [`Peer`] or an HTTP response
/// (`http::ResponseChannel`), so that the context names no transport. One `dyn` call per message; no
/// allocation per request (see [`Channel`]).
pub(crate) trait ClientChannel: fmt::Debug + Send + Sync {
    /// Sends an encoded notification on behalf of request `related`; a message with nowhere to go is dropped.
    fn notify<'a>(&'a self, related: &'a RequestId, frame: Vec<u8>) -> ChannelFuture<'a, ()>;

    /// The id of the next request to the client, or why this channel sends none.
    fn next_request_id(&self) -> Result<RequestId, Error> {
        Err(Error::Protocol("this channel sends no requests to the client".into()))
    }

    /// Sends request `id` (from [`next_request_id`](Self::next_request_id)), whose params are encoded, and
    /// waits for the client's answer. A stream peer takes its requests typed instead, through
    /// [`peer`](Self::peer), so that the engine stamps and tracks them.
    fn request<'a>(
        &'a self,
        id: RequestId,
        method: &'static str,
        params: Box<RawValue>,
    ) -> ChannelFuture<'a, Result<Box<RawValue>, Error>> {
        let _ = (id, method, params);
        Box::pin(std::future::ready(Err(Error::Protocol("this channel sends no requests to the client".into()))))
    }

    /// Ends the client's connection to the request's stream while the request goes on, where the transport
    /// can resume it (legacy HTTP); elsewhere nothing.
    fn close_stream(&self) -> ChannelFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }

    /// The engine connection, when the request came on one.
    fn peer(&self) -> Option<&Peer> {
        None
    }

    /// The HTTP request the request came in.
    #[cfg(feature = "http-server")]
    fn http_request(&self) -> Option<&http::request::Parts> {
        None
    }

    /// The transport's session, named in the request's span.
    fn session_id(&self) -> Option<&str> {
        None
    }
}

/// The verified caller an authorization layer put in the extensions of the HTTP request the MCP request came
/// in (an `Arc<Principal>`); `None` elsewhere.
pub(crate) fn principal_of(client: &dyn ClientChannel) -> Option<&Principal> {
    shared_principal_of(client).map(|principal| &**principal)
}

/// [`principal_of`], shared: for what outlives the borrow of the channel.
#[cfg_attr(not(feature = "http-server"), expect(unused_variables, reason = "only HTTP carries a principal"))]
pub(crate) fn shared_principal_of(client: &dyn ClientChannel) -> Option<&Arc<Principal>> {
    #[cfg(feature = "http-server")]
    if let Some(parts) = client.http_request() {
        return parts.extensions.get::<Arc<Principal>>();
    }
    None
}

/// Whether a principal naming only a client may own tasks and input rounds on this request
/// ([`ClientOnlyOwners`](super::principal::ClientOnlyOwners)).
pub(crate) fn client_only_owners(client: &dyn ClientChannel) -> bool {
    #[cfg(feature = "http-server")]
    if let Some(parts) = client.http_request() {
        return parts.extensions.get::<super::principal::ClientOnlyOwners>().is_some();
    }
    let _ = client;
    false
}

/// The future of a [`ClientChannel`] call.
pub(crate) type ChannelFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl ClientChannel for Peer {
    fn notify<'a>(&'a self, _related: &'a RequestId, frame: Vec<u8>) -> ChannelFuture<'a, ()> {
        Box::pin(async move {
            let _ = self.send_frame(frame).await;
        })
    }

    fn peer(&self) -> Option<&Peer> {
        Some(self)
    }
}

/// Where a handler's messages to the client go. The stream peer is held as it is, and an HTTP response
/// channel in the one `Arc` its transport allocates per request anyway, so a request costs no allocation
/// for it.
#[derive(Clone, Debug)]
pub(crate) enum Channel {
    /// A connection driven by the engine (stdio, child process, in memory).
    Peer(Peer),
    /// A channel the transport shares with the handler (an HTTP response and its session).
    #[cfg_attr(not(feature = "http-server"), expect(dead_code, reason = "only HTTP shares its channel"))]
    Shared(Arc<dyn ClientChannel>),
}

impl Channel {
    /// The client behind this channel.
    pub(crate) fn client(&self) -> &dyn ClientChannel {
        match self {
            Channel::Peer(peer) => peer,
            Channel::Shared(channel) => &**channel,
        }
    }

    /// Encodes and sends a notification on behalf of request `related`.
    pub(crate) async fn send_notification<N: Notification>(&self, related: &RequestId, params: &N) {
        #[cfg(feature = "otel")]
        if crate::telemetry::enabled() {
            let (wire, version) = self.telemetry_wire();
            if let Some(sending) = crate::telemetry::client::NotificationSend::start(params, version.as_ref(), || wire)
            {
                let outcome = match sending.frame {
                    Ok(frame) => {
                        self.client().notify(related, frame).await;
                        Ok(())
                    }
                    Err(error) => Err(error.into()),
                };
                sending.operation.sent(&outcome);
                return;
            }
        }
        let Ok(frame) = jsonrpc::encode_notification(N::METHOD, Some(params)) else { return };
        self.client().notify(related, frame).await
    }

    /// The transport and revision of this channel, as the spans of what goes through it name them.
    #[cfg(feature = "otel")]
    fn telemetry_wire(&self) -> (crate::telemetry::Wire, Option<ProtocolVersion>) {
        match self {
            Channel::Peer(peer) => (peer.wire(), peer.protocol_version()),
            #[cfg(feature = "http-server")]
            Channel::Shared(channel) => {
                let version = channel
                    .http_request()
                    .and_then(|parts| parts.headers.get("mcp-protocol-version")?.to_str().ok())
                    .and_then(crate::telemetry::known_version)
                    .map(ProtocolVersion::new);
                (crate::telemetry::Wire::http(channel.session_id()), version)
            }
            #[cfg(not(feature = "http-server"))]
            Channel::Shared(_) => (crate::telemetry::Wire::default(), None),
        }
    }
}

/// The context of one request being handled.
///
/// # Cancellation
///
/// When the client gives up on a request — `notifications/cancelled` on a stream connection or a legacy
/// HTTP session, the HTTP request going away (a 2026-07-28 client closing its connection, or any HTTP
/// client dropping a plain-JSON answer), a legacy SSE stream nobody resumes in time —
/// [`cancellation`](Self::cancellation) fires *first*, while the handler keeps running: it has
/// [`Limits::cancel_grace`](crate::Limits::cancel_grace) (default 1 s) to notice (`select!` on
/// [`CancellationToken::cancelled`]) and clean up. Past that its future is dropped. Either way no answer is
/// sent for a cancelled request. (An HTTP service that shuts down gives running calls its own grace period
/// to finish, then drops them.)
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub(crate) id: RequestId,
    pub(crate) states: Arc<StateMap>,
    pub(crate) cancellation: CancellationToken,
    pub(crate) channel: Channel,
    pub(crate) version: ProtocolVersion,
    pub(crate) client_capabilities: ClientCapabilities,
    pub(crate) progress_token: Option<ProgressToken>,
    pub(crate) log_level: Option<LoggingLevel>,
    /// Modern era, on methods that may ask for input: this round's answers and requests.
    pub(crate) input: Option<Arc<InputRound>>,
    /// A tool call that may become a task (tasks extension negotiated, tool supports tasks).
    #[cfg(feature = "tasks")]
    pub(crate) task: Option<Arc<TaskSlot>>,
}

impl RequestContext {
    /// The request's id.
    pub fn request_id(&self) -> &RequestId {
        &self.id
    }

    /// The revision this request speaks.
    pub fn protocol_version(&self) -> &ProtocolVersion {
        &self.version
    }

    /// The capabilities the client declared (for this request in the modern era, for the session in the
    /// legacy era).
    pub fn client_capabilities(&self) -> &ClientCapabilities {
        &self.client_capabilities
    }

    /// Fires when the client cancels the request (see [Cancellation](#cancellation)); the handler then has
    /// [`Limits::cancel_grace`](crate::Limits::cancel_grace) before it is dropped.
    ///
    /// ```
    /// use keel_mcp::server::{RequestContext, NoArgs};
    ///
    /// async fn slow(ctx: RequestContext, _: NoArgs) -> String {
    ///     tokio::select! {
    ///         _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => "done".into(),
    ///         _ = ctx.cancellation().cancelled() => {
    ///             // Release what the work held; the client gets no answer anyway.
    ///             "cancelled".into()
    ///         }
    ///     }
    /// }
    /// ```
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancellation
    }

    /// The value of type `T` shared with [`ServerBuilder::state`](super::ServerBuilder::state).
    ///
    /// Fails (an internal error, logged, which the client sees as a generic failure) when no value of that
    /// type was registered, so `?` is all a handler needs.
    pub fn state<T: Send + Sync + 'static>(&self) -> Result<&T, HandlerError> {
        self.states.get::<T>().ok_or_else(|| {
            HandlerError::Internal(
                format!(
                    "no shared state of type `{}`: register it with ServerBuilder::state",
                    std::any::type_name::<T>()
                )
                .into(),
            )
        })
    }

    /// The HTTP request this MCP request came in — method, URI, headers and extensions (what tower or
    /// axum middleware put there, such as an authenticated principal) — in either era. `None` for requests
    /// that came another way (stdio, child process, in memory).
    ///
    /// ```
    /// use keel_mcp::server::{NoArgs, RequestContext};
    ///
    /// async fn whoami(ctx: RequestContext, _: NoArgs) -> String {
    ///     let agent = ctx.http_request().and_then(|parts| parts.headers.get("user-agent"));
    ///     format!("{:?}", agent.and_then(|v| v.to_str().ok()))
    /// }
    /// ```
    #[cfg(feature = "http-server")]
    pub fn http_request(&self) -> Option<&http::request::Parts> {
        self.channel.client().http_request()
    }

    /// The verified caller, when an authorization layer in front of the HTTP service put one in the
    /// request's extensions (an `Arc<Principal>`), in either era. `None` for unauthenticated HTTP requests
    /// and for requests that came another way (stdio, child process, in memory).
    ///
    /// ```
    /// use keel_mcp::server::{NoArgs, RequestContext};
    ///
    /// async fn whoami(ctx: RequestContext, _: NoArgs) -> String {
    ///     match ctx.principal() {
    ///         Some(principal) => principal.subject.clone().unwrap_or_default(),
    ///         None => "anonymous".into(),
    ///     }
    /// }
    /// ```
    pub fn principal(&self) -> Option<&Principal> {
        principal_of(self.channel.client())
    }

    /// Whether the client cancelled the request.
    pub fn is_cancelled(&self) -> bool {
        self.cancellation.is_cancelled()
    }

    /// The engine connection to the client, when the request came on one (stdio, child process).
    pub fn peer(&self) -> Option<&Peer> {
        self.channel.client().peer()
    }

    /// Ends the client's connection to this request's SSE stream while the request goes on (legacy HTTP,
    /// SEP-1699): the client reconnects after the advertised `retry` delay and resumes with `Last-Event-ID`,
    /// missing nothing. Elsewhere it does nothing.
    pub async fn close_sse_stream(&self) {
        self.channel.client().close_stream().await
    }

    /// Whether the client asked for progress on this request.
    pub fn wants_progress(&self) -> bool {
        self.progress_token.is_some()
    }

    /// Reports progress; does nothing when the client did not ask for progress.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let Some(token) = &self.progress_token else { return };
        let mut params = ProgressParams::new(token.clone(), progress, total);
        params.message = message.map(str::to_owned);
        self.channel.send_notification(&self.id, &params).await;
    }

    /// Sends a log message when the client asked for messages at `level` or above (per session in the
    /// legacy era, per request in the modern era; never without being asked).
    pub async fn log(&self, level: LoggingLevel, logger: Option<&str>, data: impl Into<serde_json::Value>) {
        if self.log_level.is_none_or(|threshold| level < threshold) {
            return;
        }
        let params = LoggingMessageParams { level, logger: logger.map(str::to_owned), data: data.into(), meta: None };
        self.channel.send_notification(&self.id, &params).await;
    }

    /// Sends a request to the client and waits for its answer. Only the legacy era has server-to-client
    /// requests; prefer [`RequestContext::elicit`] and friends, which work in both eras.
    pub async fn request<R: Request>(
        &self,
        #[cfg_attr(not(feature = "otel"), allow(unused_mut))] mut params: R,
    ) -> Result<R::Result, Error> {
        let client = self.channel.client();
        if let Some(peer) = client.peer() {
            return peer.request(params).await;
        }
        let id = client.next_request_id()?;
        #[cfg(feature = "otel")]
        let operation = crate::telemetry::client::ClientOperation::start(
            R::METHOD,
            &id,
            &mut params,
            Some(self.protocol_version()),
            || self.channel.telemetry_wire().0,
        );
        let answer = match serde_json::value::to_raw_value(&params) {
            Ok(params) => client.request(id, R::METHOD, params).await,
            Err(error) => Err(error.into()),
        };
        #[cfg(feature = "otel")]
        if let Some(operation) = operation {
            operation.finish(&answer);
        }
        Ok(serde_json::from_str(answer?.get())?)
    }

    /// Asks the user for input (elicitation). `key` names this question across retries in the modern era.
    ///
    /// Legacy era: sends `elicitation/create` and waits. Modern era: returns the answer the client sent with
    /// this retry, or records the question and returns [`HandlerError::InputRequired`] — return that error
    /// (`?`) and the client will retry with the answer.
    pub async fn elicit(&self, key: &str, params: ElicitParams) -> Result<ElicitResult, HandlerError> {
        match self.ask(key, InputRequest::Elicit(params)).await? {
            InputResponse::Elicit(result) => Ok(result),
            _ => Err(HandlerError::failed("unexpected answer to an elicitation")),
        }
    }

    /// Asks the client to sample from its model, like [`RequestContext::elicit`].
    pub async fn create_message(
        &self,
        key: &str,
        params: CreateMessageParams,
    ) -> Result<CreateMessageResult, HandlerError> {
        match self.ask(key, InputRequest::CreateMessage(params)).await? {
            InputResponse::CreateMessage(result) => Ok(result),
            _ => Err(HandlerError::failed("unexpected answer to a sampling request")),
        }
    }

    /// Asks the client for its roots, like [`RequestContext::elicit`].
    pub async fn list_roots(&self, key: &str) -> Result<ListRootsResult, HandlerError> {
        match self.ask(key, InputRequest::ListRoots(None)).await? {
            InputResponse::ListRoots(result) => Ok(result),
            _ => Err(HandlerError::failed("unexpected answer to a roots request")),
        }
    }

    /// Continues this tool call as a task (tasks extension): the client gets a `CreateTaskResult` now and
    /// polls for the outcome, while the handler goes on in the background; its questions to the user from
    /// here on park the task as `input_required`. When the call cannot become a task (the tool does not
    /// support tasks, or the client did not declare the extension) this does nothing and the call simply
    /// goes on.
    #[cfg(feature = "tasks")]
    pub async fn continue_as_task(&self) -> Result<(), HandlerError> {
        match &self.task {
            Some(slot) => slot.escalate(),
            None => Ok(()),
        }
    }

    /// Whether this call is running as a task.
    #[cfg(feature = "tasks")]
    pub fn is_task(&self) -> bool {
        self.task.as_ref().is_some_and(|slot| slot.entry.get().is_some())
    }

    /// The state the previous round carried (modern era), as set by [`RequestContext::set_input_state`].
    pub fn input_state(&self) -> Option<&str> {
        self.input.as_ref().and_then(|i| i.state.as_deref())
    }

    /// State to carry to the next round when this one asks for input (modern era). Keel seals it against
    /// tampering; keep it small.
    pub fn set_input_state(&self, state: impl Into<String>) {
        if let Some(input) = &self.input {
            *input.next_state.lock().expect("input lock") = Some(state.into());
        }
    }

    async fn ask(&self, key: &str, request: InputRequest) -> Result<InputResponse, HandlerError> {
        if !self.client_supports(&request) {
            let error = ErrorObject::new(
                code::MISSING_REQUIRED_CLIENT_CAPABILITY,
                format!("the client did not declare the capability {} needs", request.method()),
            )
            .with_data(serde_json::json!({ "requiredCapabilities": input::required_capability(&request) }));
            return Err(HandlerError::Protocol(error));
        }
        #[cfg(feature = "tasks")]
        if let Some(task) = self.task.as_ref().and_then(|slot| slot.entry.get()) {
            return task.ask(key, request).await;
        }
        if self.version.is_modern() {
            let Some(input) = &self.input else {
                return Err(HandlerError::Protocol(ErrorObject::internal(
                    "input can only be requested while handling tools/call, prompts/get or resources/read",
                )));
            };
            return match input.responses.get(key) {
                Some(answer) => request.decode_response(answer).map_err(|e| {
                    HandlerError::invalid_params(format!(
                        "inputResponses[{key:?}] does not answer {}: {e}",
                        request.method()
                    ))
                }),
                None => {
                    input.ask(key, request);
                    Err(HandlerError::InputRequired)
                }
            };
        }
        let protocol = |e: Error| match e {
            Error::Rpc(e) => HandlerError::Protocol(e),
            other => HandlerError::failed(other.to_string()),
        };
        Ok(match request {
            InputRequest::Elicit(p) => InputResponse::Elicit(self.request(p).await.map_err(protocol)?),
            InputRequest::CreateMessage(p) => InputResponse::CreateMessage(self.request(p).await.map_err(protocol)?),
            InputRequest::ListRoots(p) => {
                InputResponse::ListRoots(self.request(p.unwrap_or_default()).await.map_err(protocol)?)
            }
            InputRequest::Other { method, .. } => {
                return Err(HandlerError::failed(format!("cannot send {method} to the client")));
            }
        })
    }

    fn client_supports(&self, request: &InputRequest) -> bool {
        let caps = &self.client_capabilities;
        match request {
            InputRequest::Elicit(params) => caps.elicitation.as_ref().is_some_and(|e| match params.effective_mode() {
                ElicitMode::Url => e.url.is_some(),
                _ => e.supports_form(),
            }),
            InputRequest::CreateMessage(_) => caps.sampling.is_some(),
            InputRequest::ListRoots(_) => caps.roots.is_some(),
            InputRequest::Other { .. } => true,
        }
    }
}
