//! The command line: every flag and subcommand, parsed by clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A command-line MCP client: call tools, read resources, get prompts, log in, and see the wire.
#[derive(Debug, Parser)]
#[command(name = "keel", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect and show what the server said about itself (serverInfo, protocol version, era, capabilities).
    Info(TargetArgs),
    /// Check the server answers (legacy era `ping`; a modern server is probed with `server/discover`).
    Ping(TargetArgs),
    /// List or call tools.
    #[command(subcommand)]
    Tools(ToolsCommand),
    /// List, read resources and resource templates.
    #[command(subcommand)]
    Resources(ResourcesCommand),
    /// List or get prompts.
    #[command(subcommand)]
    Prompts(PromptsCommand),
    /// Ask for completions of a prompt argument or a resource-template variable.
    Complete(CompleteArgs),
    /// Set the level of log messages the server sends (they stream to stderr).
    LogLevel(LogLevelArgs),
    /// Log in to, inspect, or forget the OAuth authorization of an MCP server.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// List the server's tools.
    List(ListArgs),
    /// Call a tool: `keel tools call NAME k=string k:=json [--args-json JSON|@file|-]`.
    Call(CallArgs),
}

#[derive(Debug, Subcommand)]
pub enum ResourcesCommand {
    /// List the server's resources.
    List(ListArgs),
    /// List the server's resource templates.
    Templates(ListArgs),
    /// Read the resource at URI.
    Read(ReadArgs),
}

#[derive(Debug, Subcommand)]
pub enum PromptsCommand {
    /// List the server's prompts.
    List(ListArgs),
    /// Get a prompt filled with `k=v` arguments.
    Get(GetPromptArgs),
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Run the OAuth flow for the server at URL and store the tokens.
    Login(LoginArgs),
    /// Show whether tokens are stored for URL (never their values).
    Status(AuthTarget),
    /// Forget the tokens and registrations stored for URL.
    Logout(AuthTarget),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Readable text.
    Text,
    /// One JSON object `{"result": …}` on stdout; notifications as NDJSON on stderr.
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EraChoice {
    /// `initialize` and sessions (revisions up to 2025-11-25).
    Legacy,
    /// The stateless 2026-07-28 lifecycle (`server/discover`).
    Modern,
    /// Probe for modern, fall back to legacy, then to HTTP+SSE.
    Auto,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SamplingChoice {
    /// Declare sampling and refuse every request (the server sees a user rejection).
    Reject,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Output, tracing and timeouts: flags every command shares.
#[derive(Clone, Debug, Args)]
pub struct Common {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Print only the result: no progress or log notifications on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print every JSON-RPC message in and out, with a timestamp and direction, to stderr.
    #[arg(long)]
    pub trace: bool,
    /// Print every HTTP exchange (method, URL, status, MCP headers, SSE event ids; never credentials) to stderr.
    #[arg(long)]
    pub trace_http: bool,
    /// Seconds to wait for the connection and the protocol handshake (0: no limit).
    #[arg(long, value_name = "SECS", default_value_t = 15.0)]
    pub connect_timeout: f64,
    /// Seconds to wait for each request's answer (0: no limit).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub timeout: f64,
    /// Restart a request's --timeout each time the server reports progress on it.
    #[arg(long)]
    pub reset_timeout_on_progress: bool,
    /// Seconds the whole command may take, progress or not (0: no limit).
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub max_total_timeout: f64,
}

/// Which server to talk to, and how.
#[derive(Clone, Debug, Args)]
pub struct Connect {
    /// The server's URL (streamable HTTP, with the HTTP+SSE fallback); also accepted as a positional.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The command that runs a stdio server (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
    /// A file in the `mcpServers` JSON shape (command/args/env/cwd, or url/headers).
    #[arg(long, value_name = "FILE", requires = "server")]
    pub config: Option<PathBuf>,
    /// The entry of --config to use.
    #[arg(long, value_name = "NAME", requires = "config")]
    pub server: Option<String>,
    /// An HTTP header sent with every request, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Send `Authorization: Bearer` with the token in this environment variable.
    #[arg(long, value_name = "VAR")]
    pub bearer_env: Option<String>,
    /// The protocol era to speak.
    #[arg(long, value_enum, default_value_t = EraChoice::Auto)]
    pub era: EraChoice,
    /// Speak exactly this protocol revision (e.g. 2025-06-18).
    #[arg(long, value_name = "VERSION")]
    pub protocol_version: Option<String>,
    /// Offer these directories as roots (repeatable; declares the roots capability).
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub roots: Vec<PathBuf>,
    /// Answer elicitation requests: `decline`, `cancel`, or a JSON file whose object is accepted as the content.
    #[arg(long, value_name = "decline|cancel|FILE")]
    pub elicit: Option<String>,
    /// Ask the server for log messages of this level and above (they stream to stderr).
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Answer sampling requests (`reject`: declare sampling and refuse each request).
    #[arg(long, value_enum)]
    pub sampling: Option<SamplingChoice>,
    #[command(flatten)]
    pub oauth: OAuthArgs,
    #[command(flatten)]
    pub common: Common,
}

/// How to authorize with OAuth when the server asks (HTTP only).
#[derive(Clone, Debug, Default, Args)]
pub struct OAuthArgs {
    /// A pre-registered OAuth client ID.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// The pre-registered client's secret.
    #[arg(long, value_name = "SECRET", env = "KEEL_CLIENT_SECRET", hide_env_values = true, requires = "client_id")]
    pub client_secret: Option<String>,
    /// Use this client ID metadata document URL (CIMD) as the client ID where the server supports it.
    #[arg(long, value_name = "URL")]
    pub client_metadata_url: Option<String>,
    /// Use the client credentials grant (needs --client-id and --client-secret): no browser, for CI.
    #[arg(long, requires = "client_secret")]
    pub client_credentials: bool,
    /// Never start an interactive login: an authorization requirement fails at once with exit 3.
    #[arg(long)]
    pub no_interactive: bool,
    /// Open no browser during a login; print the authorization URL instead.
    #[arg(long)]
    pub no_browser: bool,
    /// Where tokens are stored (default: the platform's data directory, `keel/tokens`).
    #[arg(long, value_name = "DIR", env = "KEEL_TOKEN_DIR")]
    pub token_dir: Option<PathBuf>,
}

#[derive(Clone, Debug, Args)]
pub struct Paging {
    /// Follow `nextCursor` to the last page.
    #[arg(long, conflicts_with = "cursor")]
    pub all_pages: bool,
    /// Start at this page.
    #[arg(long)]
    pub cursor: Option<String>,
}

/// A command whose only positional is the server URL.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The server's URL; or give a command after `--`, or --config/--server.
    #[arg(value_name = "URL")]
    pub target: Option<String>,
    #[command(flatten)]
    pub connect: Connect,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// The server's URL; or give a command after `--`, or --config/--server.
    #[arg(value_name = "URL")]
    pub target: Option<String>,
    #[command(flatten)]
    pub paging: Paging,
    #[command(flatten)]
    pub connect: Connect,
}

#[derive(Debug, Args)]
pub struct CallArgs {
    /// `[URL] NAME [ARG]…`: the server URL (optional), the tool, then arguments: `key=string` (always a
    /// string) or `key:=json` (a JSON value).
    #[arg(value_name = "[URL] NAME [ARG]", required = true)]
    pub positionals: Vec<String>,
    /// All arguments as one JSON object: inline, `@file`, or `-` for stdin.
    #[arg(long, value_name = "JSON|@FILE|-")]
    pub args_json: Option<String>,
    /// Send the arguments without checking them against the tool's inputSchema (no tools/list first).
    #[arg(long)]
    pub no_validate: bool,
    #[command(flatten)]
    pub connect: Connect,
}

#[derive(Debug, Args)]
pub struct ReadArgs {
    /// `[URL] URI`: the server URL (optional), then the resource URI.
    #[arg(value_name = "[URL] URI", required = true, num_args = 1..=2)]
    pub positionals: Vec<String>,
    #[command(flatten)]
    pub connect: Connect,
}

#[derive(Debug, Args)]
pub struct GetPromptArgs {
    /// `[URL] NAME [ARG]…`: the server URL (optional), the prompt, then arguments `key=value`.
    #[arg(value_name = "[URL] NAME [ARG]", required = true)]
    pub positionals: Vec<String>,
    #[command(flatten)]
    pub connect: Connect,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("reference").required(true).args(["prompt", "resource"]))]
pub struct CompleteArgs {
    /// Complete an argument of this prompt.
    #[arg(long, value_name = "NAME")]
    pub prompt: Option<String>,
    /// Complete a variable of this resource template (URI template).
    #[arg(long, value_name = "URI_TEMPLATE")]
    pub resource: Option<String>,
    /// The argument being completed and what was typed so far, `name=partial`.
    #[arg(long, value_name = "NAME=VALUE")]
    pub argument: String,
    /// Values of other arguments already chosen, `key=value` (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub context: Vec<String>,
    /// The server's URL; or give a command after `--`, or --config/--server.
    #[arg(value_name = "URL")]
    pub target: Option<String>,
    #[command(flatten)]
    pub connect: Connect,
}

#[derive(Debug, Args)]
pub struct LogLevelArgs {
    /// `[URL] LEVEL`: the server URL (optional), then debug, info, notice, warning, error, critical, alert
    /// or emergency.
    #[arg(value_name = "[URL] LEVEL", required = true, num_args = 1..=2)]
    pub positionals: Vec<String>,
    #[command(flatten)]
    pub connect: Connect,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The MCP server URL.
    pub url: String,
    /// Loopback port for the redirect (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    #[command(flatten)]
    pub oauth: OAuthArgs,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct AuthTarget {
    /// The MCP server URL.
    pub url: String,
    /// Where tokens are stored (default: the platform's data directory, `keel/tokens`).
    #[arg(long, value_name = "DIR", env = "KEEL_TOKEN_DIR")]
    pub token_dir: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Whether a positional names the server rather than a tool, prompt or resource.
fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

impl Connect {
    /// Takes the server URL given as a positional (`--url` and a positional URL together are refused).
    pub fn with_target(mut self, target: Option<String>) -> Result<Connect, crate::error::CliError> {
        if let Some(target) = target {
            if self.url.is_some() {
                return Err(crate::error::CliError::usage("give the server URL once: --url or a positional"));
            }
            self.url = Some(target);
        }
        Ok(self)
    }

    /// Splits `[URL] NAME REST…`: a leading http(s) URL followed by more positionals is the server.
    pub fn split_positionals(
        self,
        mut positionals: Vec<String>,
    ) -> Result<(Connect, String, Vec<String>), crate::error::CliError> {
        let target = if positionals.len() >= 2 && is_url(&positionals[0]) { Some(positionals.remove(0)) } else { None };
        let connect = self.with_target(target)?;
        let mut rest = positionals.into_iter();
        let name = rest.next().ok_or_else(|| crate::error::CliError::usage("missing NAME"))?;
        Ok((connect, name, rest.collect()))
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
