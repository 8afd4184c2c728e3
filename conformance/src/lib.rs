//! Keel's fixtures for the official MCP conformance suite (the server fixture and the client scenarios), and the
//! scoring of the suite's results.

pub mod auth_scenarios;
pub mod client_scenarios;
pub mod fixture;
pub mod scoring;
pub mod skills_host;
pub mod telemetry;
