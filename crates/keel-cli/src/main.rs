//! `keel`: a command-line MCP client built on Keel's public API.
//!
//! Exit codes: 0 ok, 1 usage, 3 authorization required or failed, 4 unreachable, 5 tool error, 10 protocol
//! error, 11 timeout; every non-zero exit writes one JSON line `{"error":{"code","message",…}}` to stderr
//! (see [`error`]).

mod args;
mod commands;
mod connect;
mod error;
mod output;
mod render;
mod timeouts;
mod trace;
mod trace_http;

use std::io::Write;

use clap::Parser;

use crate::args::{AuthCommand, Cli, Command, PromptsCommand, ResourcesCommand, ToolsCommand};
use crate::commands::{auth, complete, completions, prompts, resources, server, tools};
use crate::error::CliError;

fn main() {
    let code = match run() {
        Ok(()) => 0,
        Err(e) => {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "{}", e.envelope());
            e.exit_code()
        }
    };
    std::process::exit(code);
}

fn run() -> Result<(), CliError> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version: print and succeed.
            let _ = e.print();
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    if let Command::Completions(args) = &cli.command {
        completions::print(args.shell);
        return Ok(());
    }
    // One thread: a one-shot client waits on the network, and spawning workers costs start-up time.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::usage(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(dispatch(cli.command))
}

async fn dispatch(command: Command) -> Result<(), CliError> {
    match command {
        Command::Info(args) => server::info(args).await,
        Command::Ping(args) => server::ping(args).await,
        Command::LogLevel(args) => server::log_level(args).await,
        Command::Tools(ToolsCommand::List(args)) => tools::list_tools(args).await,
        Command::Tools(ToolsCommand::Call(args)) => tools::call(args).await,
        Command::Resources(ResourcesCommand::List(args)) => resources::list_resources(args).await,
        Command::Resources(ResourcesCommand::Templates(args)) => resources::templates(args).await,
        Command::Resources(ResourcesCommand::Read(args)) => resources::read(args).await,
        Command::Prompts(PromptsCommand::List(args)) => prompts::list_prompts(args).await,
        Command::Prompts(PromptsCommand::Get(args)) => prompts::get(args).await,
        Command::Complete(args) => complete::complete(args).await,
        Command::Auth(AuthCommand::Login(args)) => auth::login(args).await,
        Command::Auth(AuthCommand::Status(args)) => auth::status(args).await,
        Command::Auth(AuthCommand::Logout(args)) => auth::logout(args).await,
        Command::Completions(args) => {
            completions::print(args.shell);
            Ok(())
        }
    }
}
