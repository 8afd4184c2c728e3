//! Long-form documentation: how Keel thinks about eras and limits. (Authorization is documented with the
//! OAuth client, in `auth::client`.)

#[doc = include_str!("eras.md")]
#[cfg(all(feature = "server", feature = "client"))]
pub mod eras {}

#[doc = include_str!("limits.md")]
pub mod limits {}
