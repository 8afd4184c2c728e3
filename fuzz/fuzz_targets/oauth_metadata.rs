//! OAuth discovery documents from the network: protected resource metadata (RFC 9728) and authorization
//! server metadata (RFC 8414 / OIDC), with the checks that decide whether they may be used.
#![no_main]

use keel_mcp::auth::client::metadata::{self, AuthServerMetadata, ProtectedResourceMetadata};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(prm) = serde_json::from_slice::<ProtectedResourceMetadata>(data) {
        let _ = metadata::check_resource("https://mcp.example.com/mcp", &prm.resource);
        for issuer in &prm.authorization_servers {
            let _ = metadata::check_resource(issuer, &prm.resource);
        }
    }
    if let Ok(asm) = serde_json::from_slice::<AuthServerMetadata>(data) {
        let _ = metadata::check_issuer("https://auth.example.com", &asm);
        let _ = (
            asm.supports_s256(),
            asm.supports_cimd(),
            asm.supports_dpop_es256(),
            asm.advertises_scope("offline_access"),
        );
    }
});
