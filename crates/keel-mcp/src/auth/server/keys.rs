//! The keys that sign access tokens: ES256 (P-256) pairs made and used with `ring`, published as a JWK Set.
//! Rotation makes a new current key and keeps the previous ones published, so tokens signed before the
//! rotation still verify until they expire.

use std::sync::RwLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};

use super::error::AuthServerError;

/// How many keys that were rotated out stay in the JWK Set.
const RETIRED_KEYS_KEPT: usize = 2;

struct SigningKey {
    kid: String,
    pair: EcdsaKeyPair,
    jwk: Value,
}

impl SigningKey {
    fn from_pkcs8(der: &[u8]) -> Result<Self, AuthServerError> {
        let rng = ring::rand::SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map_err(|_| AuthServerError::Key("not a PKCS#8 P-256 private key".into()))?;
        // Uncompressed point: 0x04 ‖ X ‖ Y.
        let point = pair.public_key().as_ref();
        let (Some(x), Some(y)) = (point.get(1..33), point.get(33..65)) else {
            return Err(AuthServerError::Key("unexpected P-256 public key encoding".into()));
        };
        let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
        // The RFC 7638 thumbprint names the key: stable for one key, different for the next.
        let thumbprint_input = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(hmac_sha256::Hash::hash(thumbprint_input.as_bytes()));
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256"});
        Ok(SigningKey { kid, pair, jwk })
    }

    fn generate() -> Result<Self, AuthServerError> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| AuthServerError::Key("could not generate a P-256 key".into()))?;
        Self::from_pkcs8(pkcs8.as_ref())
    }
}

/// The current signing key and the retired ones still published.
pub(crate) struct SigningKeys {
    keys: RwLock<Vec<SigningKey>>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKeys(ES256, …)")
    }
}

impl SigningKeys {
    /// A fresh key, or the given PKCS#8 DER one.
    pub fn new(pkcs8: Option<&[u8]>) -> Result<Self, AuthServerError> {
        let key = match pkcs8 {
            Some(der) => SigningKey::from_pkcs8(der)?,
            None => SigningKey::generate()?,
        };
        Ok(SigningKeys { keys: RwLock::new(vec![key]) })
    }

    /// Makes a new current key; the previous one stays published (at most [`RETIRED_KEYS_KEPT`] do).
    pub fn rotate(&self) -> Result<(), AuthServerError> {
        let key = SigningKey::generate()?;
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        keys.insert(0, key);
        keys.truncate(RETIRED_KEYS_KEPT + 1);
        Ok(())
    }

    /// The JWK Set of every published key, current first.
    pub fn jwks(&self) -> Value {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
    }

    /// A compact JWS of `claims` signed with the current key, with header `typ`.
    pub fn sign(&self, typ: &str, claims: &Value) -> Result<String, AuthServerError> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let key = keys.first().ok_or_else(|| AuthServerError::Key("no signing key".into()))?;
        let header = json!({"alg": "ES256", "typ": typ, "kid": key.kid});
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let rng = ring::rand::SystemRandom::new();
        let signature =
            key.pair.sign(&rng, input.as_bytes()).map_err(|_| AuthServerError::Key("signing failed".into()))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_verifiable_tokens_and_rotates() {
        let keys = SigningKeys::new(None).unwrap();
        let jwt = keys.sign("at+jwt", &json!({"sub": "u", "exp": u64::MAX / 2})).unwrap();
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(keys.jwks()).unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        jsonwebtoken::decode::<Value>(&jwt, &key, &validation).unwrap();

        keys.rotate().unwrap();
        let after = keys.jwks();
        assert_eq!(after["keys"].as_array().unwrap().len(), 2);
        assert_ne!(after["keys"][0]["kid"], header.kid.clone().unwrap());
        assert_eq!(after["keys"][1]["kid"], header.kid.unwrap(), "the old key stays published");
        for _ in 0..5 {
            keys.rotate().unwrap();
        }
        assert_eq!(keys.jwks()["keys"].as_array().unwrap().len(), RETIRED_KEYS_KEPT + 1);
    }
}
