//! DPoP (RFC 9449, the MCP DPoP extension): a per-client P-256 key, proofs for the token endpoint and for each
//! request to the resource server, and the server-supplied nonces. Proofs are built here; the HTTP client
//! transport attaches them through [`super::OAuthClient::request_headers`].

use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};

use super::error::AuthError;
use super::pkce::random_token;
use super::token::now_secs;

/// A DPoP key and the nonces the servers asked for. Its `Debug` shows nothing of the key.
pub struct Dpop {
    pair: EcdsaKeyPair,
    jwk: Value,
    as_nonce: Mutex<Option<String>>,
    rs_nonce: Mutex<Option<String>>,
}

impl std::fmt::Debug for Dpop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dpop(ES256, …)")
    }
}

/// `htu`: the URL without query and fragment (RFC 9449 §4.2).
pub fn htu(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// `ath`: base64url(SHA-256(access token)).
pub fn ath(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(hmac_sha256::Hash::hash(access_token.as_bytes()))
}

impl Dpop {
    /// A fresh ES256 key (held in memory only; tokens bound to it die with the process).
    pub fn generate() -> Result<Self, AuthError> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(|_| AuthError::InvalidKey)?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| AuthError::InvalidKey)?;
        // Uncompressed point: 0x04 || X || Y.
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        Ok(Dpop { pair, jwk, as_nonce: Mutex::new(None), rs_nonce: Mutex::new(None) })
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// A proof for `method url`, bound to `access_token` when given, with `nonce` when given.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, AuthError> {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let mut claims = json!({"jti": random_token()?, "htm": method, "htu": htu(url), "iat": now_secs()});
        if let Some(token) = access_token {
            claims["ath"] = json!(ath(token));
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let rng = ring::rand::SystemRandom::new();
        let sig = self.pair.sign(&rng, input.as_bytes()).map_err(|_| AuthError::InvalidKey)?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())))
    }

    /// The nonce the authorization server asked for last.
    pub fn as_nonce(&self) -> Option<String> {
        self.as_nonce.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records the authorization server's `DPoP-Nonce`.
    pub fn set_as_nonce(&self, nonce: &str) {
        *self.as_nonce.lock().unwrap_or_else(|e| e.into_inner()) = Some(nonce.to_owned());
    }

    /// The nonce the resource server asked for last.
    pub fn rs_nonce(&self) -> Option<String> {
        self.rs_nonce.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records the resource server's `DPoP-Nonce`.
    pub fn set_rs_nonce(&self, nonce: &str) {
        *self.rs_nonce.lock().unwrap_or_else(|e| e.into_inner()) = Some(nonce.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

    #[test]
    fn proof_is_a_verifiable_dpop_jwt() {
        let d = Dpop::generate().unwrap();
        let p = d.proof("POST", "https://mcp.example/mcp?x=1#f", Some("tok"), Some("n1")).unwrap();
        let parts: Vec<&str> = p.split('.').collect();
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["jwk"]["crv"], "P-256");
        assert!(header["jwk"].get("d").is_none(), "no private key in the header");
        assert_eq!(claims["htu"], "https://mcp.example/mcp");
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["ath"], ath("tok"));
        assert_eq!(claims["nonce"], "n1");
        let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, d.pair.public_key().as_ref().to_vec());
        public
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
            .unwrap();
        let again = d.proof("POST", "https://mcp.example/mcp", None, None).unwrap();
        assert_ne!(p.split('.').nth(1), again.split('.').nth(1), "fresh jti per proof");
    }
}
