//! Asking the client for input (elicitation, sampling, roots) the same way in both eras.
//!
//! In the legacy era the server sends a request and waits for the answer. In the modern era (SEP-2322) it
//! cannot: it answers the original request with an input-required result listing what it needs, and the
//! client retries with the answers and the opaque `requestState` the server handed out. A handler written
//! against [`RequestContext::elicit`](super::RequestContext::elicit) and friends runs in both eras; in the
//! modern era it simply runs again on each retry and finds the answers it asked for.
//!
//! `requestState` travels through the client, so it is attacker-controlled: Keel seals it with an
//! HMAC-SHA256 under a per-server key, bound to the call it was issued for — the method, the target (tool,
//! prompt or URI) and a SHA-256 digest of the arguments —, to the caller (the issuer, subject and client of
//! the request's [`Principal`], when an authorization layer verified one) and to an expiry (15 minutes).
//!
//! What that protects: a client cannot forge or alter a state, cannot replay a state issued for one call on
//! another (a different tool, prompt or resource, or the same one with different arguments), cannot replay
//! a state issued to another principal (with the key ring shared by every instance, on any of them), and
//! cannot use it after it expires. A caller whose token names no subject (only a client, which all users of
//! that client share) gets no state at all: the call is refused with -32600, unless the resource server is
//! configured to treat each client as one party
//! ([`bind_client_only_tokens`](crate::auth::resource::ResourceServerConfig::bind_client_only_tokens)), as
//! for sessions and tasks. A client can replay a state on the very call it was issued for until it expires:
//! the server keeps nothing per round, so treat a round's state as "what this call had reached", never as
//! a one-time authorisation. The state is signed, not encrypted: the client can read it, so a handler must
//! not put secrets in [`RequestContext::set_input_state`](super::RequestContext::set_input_state).
//! (Encryption would need an AEAD cipher, which the server feature does not otherwise depend on.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::value::RawValue;

use super::principal::{Principal, PrincipalId, same_caller};
use crate::protocol::{ErrorObject, InputRequest, InputRequests, InputResponses};

/// How long a sealed request state stays valid.
const STATE_TTL: Duration = Duration::from_secs(15 * 60);

/// The input side of one modern request: answers the client sent, what the handler asks for now, and the
/// state it carries from round to round.
#[derive(Debug, Default)]
pub(crate) struct InputRound {
    /// Answers from the retry, by key.
    pub(crate) responses: InputResponses,
    /// The state the previous round carried (verified), for the handler.
    pub(crate) state: Option<String>,
    /// Requests the handler made this round.
    pub(crate) requested: Mutex<InputRequests>,
    /// State the handler wants carried to the next round.
    pub(crate) next_state: Mutex<Option<String>>,
    /// Who made the request: the next round's state is sealed to them.
    pub(crate) caller: Option<Arc<Principal>>,
    /// The caller's token cannot be told apart from other users' (no subject; see
    /// [`PrincipalId::can_own`]): a state sealed to it would open for them too, so none is issued.
    pub(crate) unbindable: bool,
}

impl InputRound {
    pub(crate) fn new(
        responses: Option<InputResponses>,
        state: Option<String>,
        caller: Option<Arc<Principal>>,
        client_only: bool,
    ) -> Self {
        let unbindable = caller.as_deref().is_some_and(|p| !PrincipalId::can_own(p, client_only));
        InputRound { responses: responses.unwrap_or_default(), state, caller, unbindable, ..Default::default() }
    }

    /// Records a request for input under `key`.
    pub(crate) fn ask(&self, key: &str, request: InputRequest) {
        self.requested.lock().expect("input lock").insert(key.to_owned(), request);
    }

    pub(crate) fn take_requests(&self) -> InputRequests {
        std::mem::take(&mut *self.requested.lock().expect("input lock"))
    }
}

/// The call a `requestState` is issued for, and the only call it opens on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StateBinding<'a> {
    pub(crate) method: &'a str,
    /// Tool or prompt name, or resource URI.
    pub(crate) target: &'a str,
    pub(crate) arguments: Option<&'a RawValue>,
}

/// Seals and opens `requestState` values.
#[derive(Clone)]
pub(crate) struct StateSealer {
    key: [u8; 32],
    /// Keys this server sealed with before a rotation (or other instances still seal with): states they
    /// sealed still open, so rotating keys breaks no round in flight.
    previous: Vec<[u8; 32]>,
}

impl std::fmt::Debug for StateSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateSealer(…)")
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Sealed {
    /// Method.
    m: String,
    /// Target: tool or prompt name, or resource URI.
    t: String,
    /// Digest of the call's arguments (see [`arguments_digest`]).
    a: String,
    /// Expiry, seconds since the epoch.
    e: u64,
    /// The principal the state was issued to; absent when no authorization layer verified one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<PrincipalId>,
    /// The handler's state.
    s: Option<String>,
}

impl StateSealer {
    /// A sealer with a random key.
    pub(crate) fn random() -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system's random source is available");
        StateSealer { key, previous: Vec::new() }
    }

    /// A sealer with a fixed key (several server instances behind a load balancer must share one), which
    /// also opens states sealed with the `previous` keys.
    pub(crate) fn with_keys(key: [u8; 32], previous: Vec<[u8; 32]>) -> Self {
        StateSealer { key, previous }
    }

    /// Seals `state` for a retry, by `caller`, of the call `binding` describes.
    pub(crate) fn seal(&self, binding: StateBinding<'_>, caller: Option<&Principal>, state: Option<String>) -> String {
        let expiry = (SystemTime::now() + STATE_TTL).duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let StateBinding { method, target, arguments } = binding;
        let a = arguments_digest(arguments);
        let p = caller.map(PrincipalId::of_principal);
        let sealed = Sealed { m: method.to_owned(), t: target.to_owned(), a, e: expiry, p, s: state };
        let payload = serde_json::to_vec(&sealed).expect("state encodes");
        let mac = hmac_sha256(&self.key, &payload);
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(mac))
    }

    /// Opens a state `caller` echoed; any tampering, a wrong method, target, arguments or caller, or expiry
    /// is the same -32602, so a caller learns nothing of why.
    pub(crate) fn open(
        &self,
        binding: StateBinding<'_>,
        caller: Option<&Principal>,
        token: &str,
    ) -> Result<Option<String>, ErrorObject> {
        let StateBinding { method, target, arguments } = binding;
        let invalid = || ErrorObject::invalid_params("invalid requestState");
        let (payload, mac) = token.split_once('.').ok_or_else(invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| invalid())?;
        // Every key is tried (no early exit), so timing tells nothing of which one matched.
        let matches = std::iter::once(&self.key)
            .chain(&self.previous)
            .fold(false, |found, key| constant_time_eq(&mac, &hmac_sha256(key, &payload)) | found);
        if !matches {
            return Err(invalid());
        }
        let sealed: Sealed = serde_json::from_slice(&payload).map_err(|_| invalid())?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if sealed.m != method
            || sealed.t != target
            || sealed.e < now
            || sealed.a != arguments_digest(arguments)
            || !same_caller(sealed.p.as_ref(), caller)
        {
            return Err(invalid());
        }
        Ok(sealed.s)
    }
}

/// SHA-256 of the arguments in a canonical form (members sorted, no spaces), so that a client that sends the
/// same arguments with its members in another order still matches. Computed only when a state is sealed or
/// opened, never on a call that completes in one round.
fn arguments_digest(arguments: Option<&RawValue>) -> String {
    let canonical = match arguments {
        None => String::new(),
        Some(raw) => serde_json::from_str::<serde_json::Value>(raw.get())
            .map_or_else(|_| raw.get().to_owned(), |value| value.to_string()),
    };
    URL_SAFE_NO_PAD.encode(hmac_sha256::Hash::hash(canonical.as_bytes()))
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    hmac_sha256::HMAC::mac(message, key)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The capability a kind of input request needs, as the `requiredCapabilities` of a -32021 error.
pub(crate) fn required_capability(request: &InputRequest) -> serde_json::Value {
    let name = match request {
        InputRequest::Elicit(_) => "elicitation",
        InputRequest::CreateMessage(_) => "sampling",
        InputRequest::ListRoots(_) => "roots",
        InputRequest::Other { .. } => return serde_json::json!({}),
    };
    let mut map = BTreeMap::new();
    map.insert(name, serde_json::json!({}));
    serde_json::json!(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_shape() {
        // RFC 4231 test case 2 uses a short key; ours are 32 bytes, so check against a known vector for a
        // 32-byte key computed independently: key = 0x0b * 32, "Hi There".
        let key = [0x0bu8; 32];
        let mac = hmac_sha256(&key, b"Hi There");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7");
    }

    fn call<'a>(method: &'a str, target: &'a str, arguments: Option<&'a RawValue>) -> StateBinding<'a> {
        StateBinding { method, target, arguments }
    }

    #[test]
    fn sealed_state_round_trips_and_rejects_tampering() {
        let sealer = StateSealer::random();
        let token = sealer.seal(call("tools/call", "t", None), None, Some("step-1".into()));
        assert_eq!(sealer.open(call("tools/call", "t", None), None, &token).unwrap(), Some("step-1".into()));
        assert!(sealer.open(call("tools/call", "other", None), None, &token).is_err());
        assert!(sealer.open(call("prompts/get", "t", None), None, &token).is_err());
        assert!(sealer.open(call("tools/call", "t", None), None, &format!("{token}-TAMPERED")).is_err());
        assert!(sealer.open(call("tools/call", "t", None), None, "garbage").is_err());
        let other = StateSealer::random();
        assert!(other.open(call("tools/call", "t", None), None, &token).is_err());
    }

    #[test]
    fn a_state_opens_under_any_key_of_the_ring() {
        let old = StateSealer::with_keys([1; 32], Vec::new());
        let rotated = StateSealer::with_keys([2; 32], vec![[1; 32]]);
        let stranger = StateSealer::with_keys([3; 32], vec![[4; 32]]);
        let binding = || call("tools/call", "t", None);
        // Sealed before the rotation (or on an instance not yet rotated), opened after it.
        let token = old.seal(binding(), None, Some("s".into()));
        assert_eq!(rotated.open(binding(), None, &token).unwrap().as_deref(), Some("s"));
        assert!(stranger.open(binding(), None, &token).is_err());
        // Sealed after the rotation: instances that still seal with the old key but know the new one open it.
        let token = rotated.seal(binding(), None, None);
        assert!(StateSealer::with_keys([1; 32], vec![[2; 32]]).open(binding(), None, &token).is_ok());
        assert!(old.open(binding(), None, &token).is_err());
    }

    #[test]
    fn sealed_state_is_bound_to_the_arguments() {
        let raw = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
        let (a1, a1_reordered, a2) = (raw(r#"{"a":1,"b":[2]}"#), raw(r#"{ "b": [2], "a": 1 }"#), raw(r#"{"a":2}"#));
        let sealer = StateSealer::random();
        let token = sealer.seal(call("tools/call", "t", Some(&a1)), None, None);
        assert!(sealer.open(call("tools/call", "t", Some(&a1_reordered)), None, &token).is_ok());
        assert!(sealer.open(call("tools/call", "t", Some(&a2)), None, &token).is_err());
        assert!(sealer.open(call("tools/call", "t", None), None, &token).is_err());
    }

    #[test]
    fn sealed_state_is_bound_to_the_caller() {
        let person = |subject: &str| Principal {
            issuer: Some("https://idp.example".into()),
            subject: Some(subject.into()),
            ..Principal::default()
        };
        let (alice, bob) = (person("alice"), person("bob"));
        let mut alice_refreshed = alice.clone();
        alice_refreshed.scopes = vec!["more".into()];
        let sealer = StateSealer::random();
        let binding = || call("tools/call", "t", None);
        let token = sealer.seal(binding(), Some(&alice), None);
        assert!(sealer.open(binding(), Some(&alice_refreshed), &token).is_ok());
        assert!(sealer.open(binding(), Some(&bob), &token).is_err());
        assert!(sealer.open(binding(), None, &token).is_err());
        let anonymous = sealer.seal(binding(), None, None);
        assert!(sealer.open(binding(), Some(&alice), &anonymous).is_err());
    }
}
