//! Which server, over what, and the connected session: URL or `-- command`, `--config`/`--server`,
//! headers and bearer tokens, OAuth, the era and revision, the client-side features, and the trace wrappers.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use keel_mcp::auth::HttpAuth;
use keel_mcp::client::http::{HttpTransport, reqwest};
use keel_mcp::client::{Client, ClientBuilder, RequestOptions};
use keel_mcp::protocol::{
    CreateMessageParams, ElicitParams, ElicitResult, ErrorObject, Implementation, ProtocolVersion, Root,
};
use keel_mcp::transport::{ChildProcess, Transport};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Notify;

use crate::args::{Common, Connect, EraChoice, SamplingChoice};
use crate::commands::auth::LazyOAuth;
use crate::error::{CLOSED, CliError, Kind};
use crate::output::Output;
use crate::timeouts::Timeouts;
use crate::trace::Traced;

/// The server to talk to.
#[derive(Clone, Debug)]
pub enum Target {
    Url { url: String, headers: Vec<(String, String)> },
    Command { program: String, args: Vec<String>, env: BTreeMap<String, String>, cwd: Option<PathBuf> },
}

/// One entry of an `mcpServers` file.
#[derive(Debug, Deserialize)]
struct ServerEntry {
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    mcp_servers: BTreeMap<String, ServerEntry>,
}

fn from_config(path: &Path, name: &str) -> Result<Target, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("cannot read --config {}: {e}", path.display())))?;
    let mut config: ConfigFile = serde_json::from_str(&text)
        .map_err(|e| CliError::usage(format!("{}: not an mcpServers file: {e}", path.display())))?;
    let entry = config.mcp_servers.remove(name).ok_or_else(|| {
        let known: Vec<_> = config.mcp_servers.keys().cloned().collect();
        CliError::usage(format!("{}: no server {name:?} (known: {})", path.display(), known.join(", ")))
    })?;
    match (entry.url, entry.command) {
        (Some(url), None) => Ok(Target::Url { url, headers: entry.headers.into_iter().collect() }),
        (None, Some(program)) => Ok(Target::Command { program, args: entry.args, env: entry.env, cwd: entry.cwd }),
        _ => Err(CliError::usage(format!("{}: server {name:?} needs exactly one of url and command", path.display()))),
    }
}

fn parse_header(header: &str) -> Result<(String, String), CliError> {
    let (name, value) = header
        .split_once(':')
        .ok_or_else(|| CliError::usage(format!("--header {header:?}: expected 'Name: value'")))?;
    Ok((name.trim().to_owned(), value.trim().to_owned()))
}

impl Target {
    fn resolve(connect: &Connect) -> Result<Target, CliError> {
        let mut target = match (&connect.config, &connect.url, connect.command.split_first()) {
            (Some(config), None, None) => from_config(config, connect.server.as_deref().unwrap_or_default())?,
            (None, Some(url), None) => Target::Url { url: url.clone(), headers: Vec::new() },
            (None, None, Some((program, args))) => {
                Target::Command { program: program.clone(), args: args.to_vec(), env: BTreeMap::new(), cwd: None }
            }
            (None, None, None) => {
                return Err(CliError::usage("no server given: pass a URL, `-- COMMAND ARGS…`, or --config/--server"));
            }
            _ => return Err(CliError::usage("give one server: a URL, `-- COMMAND ARGS…`, or --config/--server")),
        };
        if let Target::Url { url, headers } = &mut target {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(CliError::usage(format!("{url:?} is not an http(s) URL; put a command after `--`")));
            }
            for h in &connect.headers {
                headers.push(parse_header(h)?);
            }
            if let Some(var) = &connect.bearer_env {
                let token = std::env::var(var)
                    .map_err(|_| CliError::usage(format!("--bearer-env: the environment variable {var} is not set")))?;
                headers.push(("Authorization".into(), format!("Bearer {token}")));
            }
        } else if !connect.headers.is_empty() || connect.bearer_env.is_some() {
            return Err(CliError::usage("--header and --bearer-env apply to URL servers only"));
        }
        Ok(target)
    }
}

/// A connected client and how the command reports.
pub struct Session {
    pub client: Client,
    pub output: Output,
    pub timeouts: Timeouts,
}

impl Session {
    /// Runs one request under the command's timeouts (see [`Timeouts::request`]).
    pub async fn request<T, Fut>(&self, send: impl FnOnce(RequestOptions) -> Fut) -> Result<T, CliError>
    where
        Fut: Future<Output = Result<T, keel_mcp::Error>>,
    {
        self.timeouts.request(&self.output, |options| async { send(options).await.map_err(CliError::from) }).await
    }

    /// Closes the connection (a child process exits, an HTTP session ends), then hands back how to print
    /// and what the command got.
    pub async fn finish<T>(self, outcome: Result<T, CliError>) -> Result<(Output, T), CliError> {
        self.client.close().await;
        Ok((self.output, outcome?))
    }

    /// The negotiated era, as `info` reports it.
    pub fn era_name(&self) -> &'static str {
        match self.client.era() {
            keel_mcp::protocol::Era::Modern => "modern",
            _ => "legacy",
        }
    }
}

/// How the client answers what the server asks of it.
#[derive(Clone, Debug, Default)]
pub struct ClientFeatures {
    roots: Vec<PathBuf>,
    elicit: Option<String>,
    sampling: Option<SamplingChoice>,
    versions: Option<Vec<ProtocolVersion>>,
}

impl ClientFeatures {
    fn from_args(connect: &Connect) -> Result<Self, CliError> {
        let versions = match (&connect.protocol_version, connect.era) {
            (Some(v), _) => {
                let version = ProtocolVersion::new(v.clone());
                if !version.is_known() {
                    let known: Vec<_> = ProtocolVersion::ALL.iter().map(|v| v.as_str().to_owned()).collect();
                    return Err(CliError::usage(format!("--protocol-version {v}: known are {}", known.join(", "))));
                }
                Some(vec![version])
            }
            (None, EraChoice::Auto) => None,
            (None, era) => {
                let modern = era == EraChoice::Modern;
                Some(ProtocolVersion::ALL.iter().filter(|v| v.is_modern() == modern).cloned().collect())
            }
        };
        Ok(ClientFeatures {
            roots: connect.roots.clone(),
            elicit: connect.elicit.clone(),
            sampling: connect.sampling,
            versions,
        })
    }

    fn apply(&self, mut builder: ClientBuilder, output: &Output) -> Result<ClientBuilder, CliError> {
        if let Some(versions) = &self.versions {
            builder = builder.protocol_versions(versions.clone());
        }
        if !self.roots.is_empty() {
            let roots = self.roots.iter().map(|p| root(p)).collect::<Result<Vec<_>, _>>()?;
            builder = builder.roots(roots);
        }
        if let Some(elicit) = &self.elicit {
            let answer = match elicit.as_str() {
                "decline" => ElicitResult::decline(),
                "cancel" => ElicitResult::cancel(),
                path => {
                    let text =
                        std::fs::read_to_string(path).map_err(|e| CliError::usage(format!("--elicit {path}: {e}")))?;
                    let content = serde_json::from_str(&text)
                        .map_err(|e| CliError::usage(format!("--elicit {path}: expected a JSON object: {e}")))?;
                    ElicitResult::accept(Some(content))
                }
            };
            let output = output.clone();
            builder = builder.on_elicitation(move |params: ElicitParams| {
                let value = serde_json::to_value(&params).unwrap_or(Value::Null);
                output.event("elicitation", value, || "elicitation request answered from --elicit".into());
                std::future::ready(Ok(answer.clone()))
            });
        }
        if self.sampling == Some(SamplingChoice::Reject) {
            builder = builder.on_sampling(|_: CreateMessageParams| {
                std::future::ready(Err(ErrorObject::new(
                    -1,
                    "the user rejected the sampling request (--sampling reject)",
                )))
            });
        }
        let output = output.clone();
        Ok(builder.on_notification(move |n| {
            output.notification(n);
            std::future::ready(())
        }))
    }
}

fn root(path: &Path) -> Result<Root, CliError> {
    let absolute =
        std::path::absolute(path).map_err(|e| CliError::usage(format!("--roots {}: {e}", path.display())))?;
    let name = absolute.file_name().map(|n| n.to_string_lossy().into_owned());
    let mut root: Root = serde_json::from_value(serde_json::json!({
        "uri": format!("file://{}", percent_encode_path(&absolute.to_string_lossy())),
    }))
    .map_err(|e| CliError::usage(e.to_string()))?;
    root.name = name;
    Ok(root)
}

/// A path as the path of a `file://` URI: bytes outside RFC 3986's unreserved set (and `/`) percent-encoded.
fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Resolves the target from the flags and connects.
pub async fn open(connect: &Connect) -> Result<Session, CliError> {
    let output = Output::new(connect.common.format, connect.common.quiet);
    let timeouts = Timeouts::new(&connect.common)?;
    let target = Target::resolve(connect)?;
    let features = ClientFeatures::from_args(connect)?;
    let login = Arc::new(Notify::new());
    let oauth = match &target {
        // An explicit Authorization header wins over OAuth.
        Target::Url { url, headers } if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("authorization")) => {
            crate::commands::auth::OAuthPlan::new(url, &connect.oauth, None, login.clone())?
        }
        _ => None,
    };
    let level = connect.log_level.as_deref().map(crate::commands::server::parse_level).transpose()?;
    let auth = oauth.map(|plan| Arc::new(LazyOAuth::new(plan)) as Arc<dyn HttpAuth>);
    let session = open_with(target, auth, &login, &connect.common, &output, &timeouts, features).await?;
    if let Some(level) = level {
        // Legacy: a `logging/setLevel` round trip; modern: the level rides in every later request's `_meta`.
        let set = session.request(|_| session.client.set_logging_level(level)).await;
        if let Err(e) = set {
            session.client.close().await;
            return Err(e);
        }
    }
    Ok(session)
}

/// Connects to `target`, within the connect deadline (lifted once `login` fires: a user is at the browser).
pub async fn open_with(
    target: Target,
    auth: Option<Arc<dyn HttpAuth>>,
    login: &Notify,
    common: &Common,
    output: &Output,
    timeouts: &Timeouts,
    features: ClientFeatures,
) -> Result<Session, CliError> {
    let builder = Client::builder(Implementation::new("keel", env!("CARGO_PKG_VERSION")));
    // A silent server must not hold the modern probe for Keel's 10 s default before the legacy fallback.
    let probe = timeouts.connect.unwrap_or(Duration::from_secs(10)).min(Duration::from_secs(10));
    let builder = features.apply(builder.probe_timeout(probe), output)?;
    let trace = common.trace;
    let client = timeouts
        .connect(login, async {
            match target {
                Target::Url { url, headers } => {
                    let mut transport = http_transport(&url, timeouts.connect)?;
                    for (name, value) in &headers {
                        transport = transport
                            .header(name, value)
                            .map_err(|e| CliError::usage(format!("--header {name}: {e}")))?;
                    }
                    if let Some(auth) = auth {
                        transport = transport.auth(auth);
                    }
                    if common.trace_http {
                        transport = transport.observer(Arc::new(crate::trace_http::HttpTrace::new(output.clone())));
                    }
                    connect_over(builder, transport, trace, output).await
                }
                Target::Command { program, args, env, cwd } => {
                    if common.trace_http {
                        return Err(CliError::usage("--trace-http applies to URL servers only; use --trace"));
                    }
                    // The server's own stderr (a traceback, a config error) is what the user needs to see,
                    // except where stderr is for machines (--format json) or asked to be quiet.
                    let inherit = !output.json() && !output.quiet;
                    let mut child = ChildProcess::new(&program).args(&args).inherit_stderr(inherit);
                    for (k, v) in &env {
                        child = child.env(k, v);
                    }
                    if let Some(cwd) = &cwd {
                        child = child.current_dir(cwd);
                    }
                    let transport = child.spawn().map_err(|e| {
                        CliError::new(Kind::Unreachable, format!("cannot start {program:?}: {e}"))
                            .with_code("spawn_failed")
                    })?;
                    connect_over(builder, transport, trace, output).await.map_err(|e| match e.kind {
                        // The process ended before the handshake: the server could not start.
                        Kind::Unreachable => CliError::new(
                            Kind::Unreachable,
                            format!("{program:?} stopped talking before the MCP handshake: {}", e.message),
                        )
                        .with_code("server_exited"),
                        Kind::Protocol if e.message == CLOSED => CliError::new(
                            Kind::Unreachable,
                            format!("{program:?} exited before the MCP handshake (see its stderr above)"),
                        )
                        .with_code("server_exited"),
                        _ => e,
                    })
                }
            }
        })
        .await?;
    Ok(Session { client, output: output.clone(), timeouts: timeouts.clone() })
}

/// The streamable HTTP transport to `url`. A plain `http://` endpoint gets a client without root
/// certificates: it never speaks TLS (redirects are not followed, and the HTTP+SSE endpoint must be on the
/// same origin), and loading the platform's roots is most of what a local `keel` run costs at start-up.
fn http_transport(url: &str, connect_timeout: Option<Duration>) -> Result<HttpTransport, CliError> {
    let mut builder = reqwest::Client::builder();
    if let Some(timeout) = connect_timeout {
        builder = builder.connect_timeout(timeout);
    }
    if url.starts_with("http://") {
        builder = builder.tls_certs_only(std::iter::empty());
    }
    HttpTransport::with_client_builder(url, builder).map_err(CliError::from)
}

async fn connect_over<T: Transport>(
    builder: ClientBuilder,
    transport: T,
    trace: bool,
    output: &Output,
) -> Result<Client, CliError> {
    let client = if trace {
        builder.connect(Traced::new(transport, output.clone())).await
    } else {
        builder.connect(transport).await
    };
    client.map_err(CliError::from)
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_paths_are_percent_encoded() {
        assert_eq!(super::percent_encode_path("/home/a b/ü%"), "/home/a%20b/%C3%BC%25");
        assert_eq!(super::percent_encode_path("/srv/app-1.0_x~"), "/srv/app-1.0_x~");
    }
}
