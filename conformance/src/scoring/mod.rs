//! Scoring a run of the official conformance suite: read each scenario's `checks.json`, apply the strict pass
//! rule, and compare with `conformance/expected-failures.yml`.
//!
//! `conformance/run` launches the suite and records each run (`<side>-<label>.run.json` beside the harness
//! output `<side>-<label>/`); the `conformance-score` binary reads those with this module and decides.

pub mod checks;
pub mod expected;
pub mod report;
