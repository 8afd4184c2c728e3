//! Keel's fixtures for the official MCP conformance suite: the server fixture and the client scenarios.

pub mod auth_scenarios;
pub mod client_scenarios;
pub mod fixture;
pub mod skills_host;
