//! Long-form documentation: how to write handlers, and how Keel thinks about eras and limits. (Authorization is documented with the
//! OAuth client, in `auth::client`.)

#[doc = include_str!("eras.md")]
#[cfg(all(feature = "server", feature = "client"))]
pub mod eras {}

#[doc = include_str!("limits.md")]
pub mod limits {}

#[doc = include_str!("handlers.md")]
#[cfg(feature = "http-server")]
pub mod handlers {}
