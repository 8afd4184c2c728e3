//! The protected `tools/call` row: Keel's HTTP server as an OAuth resource server, every request verified by
//! `JwtVerifier` (ES256, the JWKS fetched once and cached), against the same server unprotected.
//!
//! The harness makes an ES256 key pair per run and mints one long-lived access token with it; the server
//! subprocess (`keel-bench serve keel-protected`) gets the public key as a JWK in `KEEL_BENCH_JWK` and serves it
//! as a JWKS on a loopback port of its own, which its verifier fetches on the first request.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use bytes::Bytes;
use http_body_util::Full;
use keel_mcp::auth::resource::{JwtConfig, JwtVerifier, ResourceServerConfig};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

/// The environment variable that hands the public JWK to the server subprocess.
pub const JWK_ENV: &str = "KEEL_BENCH_JWK";
const ISSUER: &str = "https://idp.bench.invalid";
/// The resource the tokens are for (the server compares `aud` with it; nothing is fetched from it).
const RESOURCE: &str = "https://mcp.bench.invalid/mcp";
const KID: &str = "bench-key";

/// What the harness holds: the public JWK for the server and a token for the load generator.
pub struct Credentials {
    pub jwk: String,
    pub token: Arc<str>,
}

/// A fresh key pair and a token valid for a day, as an authorization server would issue it (RFC 9068).
pub fn credentials() -> anyhow::Result<Credentials> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| anyhow::anyhow!("cannot make an ES256 key"))?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| anyhow::anyhow!("cannot load the ES256 key"))?;
    // An uncompressed P-256 point: 0x04, then x and y, 32 bytes each.
    let point = key.public_key().as_ref();
    anyhow::ensure!(point.len() == 65 && point[0] == 4, "unexpected public key encoding");
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": KID,
        "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
    });
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": KID});
    let claims = json!({
        "iss": ISSUER, "sub": "bench-user", "aud": RESOURCE, "client_id": "keel-bench",
        "scope": "bench", "iat": now, "exp": now + 86_400, "jti": "bench",
    });
    let signing_input =
        format!("{}.{}", B64.encode(serde_json::to_vec(&header)?), B64.encode(serde_json::to_vec(&claims)?));
    let signature = key.sign(&rng, signing_input.as_bytes()).map_err(|_| anyhow::anyhow!("cannot sign"))?;
    let token = format!("{signing_input}.{}", B64.encode(signature.as_ref()));
    Ok(Credentials { jwk: jwk.to_string(), token: token.into() })
}

/// Serves `{"keys": [jwk]}` at `http://127.0.0.1:PORT/jwks` for as long as the process lives; returns that URL.
async fn serve_jwks(jwk: &str) -> anyhow::Result<String> {
    let jwk: Value = serde_json::from_str(jwk)?;
    let body = Bytes::from(serde_json::to_vec(&json!({ "keys": [jwk] }))?);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let url = format!("http://{}/jwks", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| {
                    let mut response = hyper::Response::new(Full::new(body.clone()));
                    response.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("application/json"),
                    );
                    async move { Ok::<_, Infallible>(response) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    Ok(url)
}

/// The resource-server protection for the bench server: tokens from [`ISSUER`] for [`RESOURCE`], keys from the JWKS
/// that [`serve_jwks`] serves (the public key in `KEEL_BENCH_JWK`).
pub async fn protection() -> anyhow::Result<ResourceServerConfig> {
    let jwk = std::env::var(JWK_ENV).map_err(|_| anyhow::anyhow!("{JWK_ENV} is not set"))?;
    let jwks_url = serve_jwks(&jwk).await?;
    let verifier = JwtVerifier::new(JwtConfig::new(ISSUER, jwks_url, RESOURCE))?;
    Ok(ResourceServerConfig::new(RESOURCE, [ISSUER], Arc::new(verifier)))
}
