//! JWT client assertions (RFC 7523 §2.2, `private_key_jwt`): an ES256 JWT with `iss` = `sub` = the client id
//! and `aud` = the authorization server's issuer, signed with a P-256 key the application supplies.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::json;

use super::error::AuthError;
use super::pkce::random_token;
use super::token::now_secs;

/// The `client_assertion_type` for JWT client authentication.
pub const JWT_BEARER_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A P-256 private key that signs client assertions. Its `Debug` shows nothing of the key.
pub struct AssertionKey {
    pair: EcdsaKeyPair,
}

impl std::fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AssertionKey(ES256, …)")
    }
}

impl AssertionKey {
    /// Reads a PKCS#8 P-256 key, PEM (`-----BEGIN PRIVATE KEY-----`) or DER.
    pub fn from_pkcs8(key: &[u8]) -> Result<Self, AuthError> {
        let der = match std::str::from_utf8(key) {
            Ok(text) if text.contains("-----BEGIN") => {
                let body: String = text.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
                STANDARD.decode(body).map_err(|_| AuthError::InvalidKey)?
            }
            _ => key.to_vec(),
        };
        let rng = ring::rand::SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
            .map_err(|_| AuthError::InvalidKey)?;
        Ok(AssertionKey { pair })
    }

    /// A fresh assertion for `client_id` at the authorization server `audience`, valid for five minutes.
    pub fn client_assertion(&self, client_id: &str, audience: &str) -> Result<String, AuthError> {
        let now = now_secs();
        let header = json!({"alg": "ES256", "typ": "JWT"});
        let claims = json!({
            "iss": client_id, "sub": client_id, "aud": audience,
            "iat": now, "exp": now + 300, "jti": random_token()?,
        });
        let signing_input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let rng = ring::rand::SystemRandom::new();
        let sig = self.pair.sign(&rng, signing_input.as_bytes()).map_err(|_| AuthError::InvalidKey)?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_FIXED, KeyPair, UnparsedPublicKey};

    #[test]
    fn signs_a_verifiable_es256_assertion() {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pem =
            format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", STANDARD.encode(pkcs8.as_ref()));
        let key = AssertionKey::from_pkcs8(pem.as_bytes()).unwrap();
        let jwt = key.client_assertion("client-1", "https://as.example").unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!((claims["iss"].as_str(), claims["sub"].as_str()), (Some("client-1"), Some("client-1")));
        assert_eq!(claims["aud"], "https://as.example");
        let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key.pair.public_key().as_ref().to_vec());
        let input = format!("{}.{}", parts[0], parts[1]);
        public.verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
        assert!(!format!("{key:?}").contains("BEGIN"));
        assert!(AssertionKey::from_pkcs8(b"not a key").is_err());
    }
}
