//! The embedded authorization server, driven in-process with `oneshot`: the whole authorization-code flow,
//! refresh rotation and reuse detection, client authentication, registration, revocation, and bad input
//! at every endpoint — each answered with the RFC's error and nothing issued.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use keel_mcp::auth::server::{
    AuthorizationServer, AutoApprove, CimdPolicy, Client, ClientAuthMethod, ConsentPage, RateLimits,
};
use keel_mcp::server::http::{PeerAddr, ResponseBody};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const ISSUER: &str = "http://127.0.0.1:9000";
const RESOURCE: &str = "http://127.0.0.1:9000/mcp";
const CALLBACK: &str = "http://127.0.0.1:3000/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn server() -> AuthorizationServer {
    server_with(|b| b)
}

fn server_with(
    f: impl FnOnce(keel_mcp::auth::server::AuthorizationServerBuilder) -> keel_mcp::auth::server::AuthorizationServerBuilder,
) -> AuthorizationServer {
    let builder = AuthorizationServer::builder(ISSUER)
        .resource(RESOURCE)
        .scopes(["notes:read", "notes:write"])
        .consent(AutoApprove::as_user("alice"))
        .rate_limits(RateLimits::off());
    let server = f(builder).build().unwrap();
    server.register_client(Client::public("pub", vec![CALLBACK.into()])).unwrap();
    server.register_client(Client::confidential("conf", "s3cret", vec![CALLBACK.into()]).unwrap()).unwrap();
    server
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Value,
}

impl Answer {
    fn location(&self) -> url::Url {
        url::Url::parse(self.headers.get("location").expect("a redirect").to_str().unwrap()).unwrap()
    }

    fn query(&self, name: &str) -> Option<String> {
        self.location().query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

async fn send(server: &AuthorizationServer, request: Request<String>) -> Answer {
    let response: Response<ResponseBody> = server.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer { status: parts.status, headers: parts.headers, body }
}

async fn get(server: &AuthorizationServer, uri: &str) -> Answer {
    send(server, Request::get(uri).body(String::new()).unwrap()).await
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

async fn post_form(
    server: &AuthorizationServer,
    path: &str,
    pairs: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> Answer {
    let mut request = Request::post(path).header("content-type", "application/x-www-form-urlencoded");
    if let Some((id, secret)) = basic {
        request = request.header("authorization", format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))));
    }
    send(server, request.body(form(pairs)).unwrap()).await
}

fn authorize_uri(client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("state", "st4te"),
    ];
    pairs.extend_from_slice(extra);
    format!("/authorize?{}", form(&pairs))
}

/// A code for `client_id`, via the authorization endpoint.
async fn code(server: &AuthorizationServer, client_id: &str, extra: &[(&str, &str)]) -> String {
    let answer = get(server, &authorize_uri(client_id, extra)).await;
    assert_eq!(answer.status, StatusCode::FOUND, "{:?}", answer.body);
    assert_eq!(answer.query("iss").as_deref(), Some(ISSUER));
    assert_eq!(answer.query("state").as_deref(), Some("st4te"));
    answer.query("code").expect("a code")
}

/// The form of a token request redeeming `code` (naming `client_id` when given).
fn code_exchange<'a>(code: &'a str, client_id: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", VERIFIER),
    ];
    pairs.extend(client_id.map(|id| ("client_id", id)));
    pairs
}

async fn redeem(server: &AuthorizationServer, client_id: &str, code: &str) -> Answer {
    post_form(server, "/token", &code_exchange(code, Some(client_id)), None).await
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn metadata_is_published_where_clients_look() {
    let server = server();
    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
        let answer = get(&server, path).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert!(answer.headers["content-type"].to_str().unwrap().starts_with("application/json"));
        let m = &answer.body;
        assert_eq!(m["issuer"], ISSUER, "exactly as configured, no slash added");
        assert_eq!(m["authorization_endpoint"], format!("{ISSUER}/authorize"));
        assert_eq!(m["token_endpoint"], format!("{ISSUER}/token"));
        assert_eq!(m["registration_endpoint"], format!("{ISSUER}/register"));
        assert_eq!(m["revocation_endpoint"], format!("{ISSUER}/revoke"));
        assert_eq!(m["jwks_uri"], format!("{ISSUER}/jwks"));
        assert_eq!(m["response_types_supported"], json!(["code"]));
        assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(m["client_id_metadata_document_supported"], true);
        assert_eq!(m["authorization_response_iss_parameter_supported"], true);
        assert!(m["scopes_supported"].as_array().unwrap().contains(&json!("offline_access")));
        assert_eq!(
            m["token_endpoint_auth_methods_supported"],
            json!(["none", "client_secret_basic", "client_secret_post", "private_key_jwt"])
        );
    }
    // An issuer with a path: path insertion, and the path-appended OpenID location.
    let with_path = AuthorizationServer::builder("https://auth.example/tenant")
        .resource("https://mcp.example/mcp")
        .consent(AutoApprove::as_user("a"))
        .build()
        .unwrap();
    for path in ["/.well-known/oauth-authorization-server/tenant", "/tenant/.well-known/openid-configuration"] {
        let answer = get(&with_path, path).await;
        assert_eq!(answer.body["issuer"], "https://auth.example/tenant", "{path}");
        assert_eq!(answer.body["token_endpoint"], "https://auth.example/tenant/token");
    }
    assert_eq!(get(&with_path, "/.well-known/oauth-authorization-server").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn authorization_code_flow_issues_a_verifiable_jwt() {
    let server = server();
    let code = code(&server, "pub", &[("scope", "notes:read"), ("resource", RESOURCE)]).await;
    let answer = redeem(&server, "pub", &code).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.headers["cache-control"], "no-store");
    assert_eq!(answer.body["token_type"], "Bearer");
    assert!(answer.body.get("refresh_token").is_none(), "no offline_access, no refresh token");
    let token = answer.body["access_token"].as_str().unwrap();

    // RFC 9068, verified against the published JWK Set with no shared state.
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(get(&server, "/jwks").await.body).unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[RESOURCE]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation).unwrap().claims;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], "pub");
    assert_eq!(claims["scope"], "notes:read");

    // Rotation keeps old tokens verifiable.
    server.rotate_signing_key().unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(server.jwks()).unwrap();
    assert!(jwks.find(header.kid.as_deref().unwrap()).is_some());
}

#[tokio::test]
async fn confidential_clients_must_present_their_secret() {
    let server = server();
    let c = code(&server, "conf", &[]).await;
    // The `none` path with a secret-bearing client: refused, and the code is spent.
    let answer = redeem(&server, "conf", &c).await;
    assert_eq!((answer.status, answer.error()), (StatusCode::UNAUTHORIZED, "invalid_client"));

    let c = code(&server, "conf", &[]).await;
    let pairs =
        [("grant_type", "authorization_code"), ("code", &c), ("redirect_uri", CALLBACK), ("code_verifier", VERIFIER)];
    let wrong = post_form(&server, "/token", &pairs, Some(("conf", "wrong"))).await;
    assert_eq!((wrong.status, wrong.error()), (StatusCode::UNAUTHORIZED, "invalid_client"));
    assert!(wrong.headers["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert!(wrong.body.get("access_token").is_none());

    for basic in [true, false] {
        let c = code(&server, "conf", &[]).await;
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("code", c.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ];
        let answer = if basic {
            post_form(&server, "/token", &pairs, Some(("conf", "s3cret"))).await
        } else {
            pairs.extend([("client_id", "conf"), ("client_secret", "s3cret")]);
            post_form(&server, "/token", &pairs, None).await
        };
        assert_eq!(answer.status, StatusCode::OK, "basic={basic}: {:?}", answer.body);
    }
    // A public client presenting a secret is refused too.
    let c = code(&server, "pub", &[]).await;
    let answer = post_form(
        &server,
        "/token",
        &[("grant_type", "authorization_code"), ("code", &c), ("redirect_uri", CALLBACK), ("code_verifier", VERIFIER)],
        Some(("pub", "guess")),
    )
    .await;
    assert_eq!(answer.error(), "invalid_client");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let server = server();
    let c = code(&server, "pub", &[("scope", "notes:read offline_access")]).await;
    let first = redeem(&server, "pub", &c).await;
    let r1 = first.body["refresh_token"].as_str().expect("offline_access granted a refresh token").to_owned();
    let refresh = |token: String| {
        let server = server.clone();
        async move {
            post_form(
                &server,
                "/token",
                &[("grant_type", "refresh_token"), ("refresh_token", &token), ("client_id", "pub")],
                None,
            )
            .await
        }
    };
    let second = refresh(r1.clone()).await;
    assert_eq!(second.status, StatusCode::OK, "{:?}", second.body);
    let r2 = second.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2, "rotated");
    // r1 again: reuse; the family (r2 included) is revoked.
    let reused = refresh(r1).await;
    assert_eq!((reused.status, reused.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
    let after = refresh(r2).await;
    assert_eq!(after.error(), "invalid_grant", "the family is gone");
    assert!(after.body.get("access_token").is_none());
}

#[tokio::test]
async fn refresh_tokens_need_the_grant_and_offline_access() {
    let server = server();
    server.register_client(Client::public("nore", vec![CALLBACK.into()]).grant_types(&["authorization_code"])).unwrap();
    let c = code(&server, "nore", &[("scope", "notes:read offline_access")]).await;
    let answer = redeem(&server, "nore", &c).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body.get("refresh_token").is_none());
    assert_eq!(claims(answer.body["access_token"].as_str().unwrap())["scope"], "notes:read");
}

#[tokio::test]
async fn bad_code_redemptions_issue_nothing() {
    let server = server();
    // Wrong verifier.
    let c = code(&server, "pub", &[]).await;
    let wrong = post_form(
        &server,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("redirect_uri", CALLBACK),
            ("code_verifier", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            ("client_id", "pub"),
        ],
        None,
    )
    .await;
    assert_eq!((wrong.status, wrong.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
    assert_eq!(redeem(&server, "pub", &c).await.error(), "invalid_grant", "a failed attempt spends the code");

    // Reused code: refused, and the refresh family it issued is revoked.
    let c = code(&server, "pub", &[("scope", "notes:read offline_access")]).await;
    let ok = redeem(&server, "pub", &c).await;
    let refresh = ok.body["refresh_token"].as_str().unwrap().to_owned();
    let again = redeem(&server, "pub", &c).await;
    assert_eq!(again.error(), "invalid_grant");
    assert!(again.body.get("access_token").is_none());
    let r = post_form(
        &server,
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("client_id", "pub")],
        None,
    )
    .await;
    assert_eq!(r.error(), "invalid_grant", "tokens of a replayed code are revoked");

    // Mismatched redirect_uri (another loopback port is fine at the authorization endpoint, not here).
    let c = code(&server, "pub", &[]).await;
    let mismatch = post_form(
        &server,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("redirect_uri", "http://127.0.0.1:3001/callback"),
            ("code_verifier", VERIFIER),
            ("client_id", "pub"),
        ],
        None,
    )
    .await;
    assert_eq!(mismatch.error(), "invalid_grant");

    // Mismatched resource.
    let c = code(&server, "pub", &[]).await;
    let other = post_form(
        &server,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
            ("client_id", "pub"),
            ("resource", "https://elsewhere.example/mcp"),
        ],
        None,
    )
    .await;
    assert_eq!(other.error(), "invalid_target");

    // Another client's code.
    let c = code(&server, "pub", &[]).await;
    let stolen = post_form(
        &server,
        "/token",
        &[("grant_type", "authorization_code"), ("code", &c), ("redirect_uri", CALLBACK), ("code_verifier", VERIFIER)],
        Some(("conf", "s3cret")),
    )
    .await;
    assert_eq!(stolen.error(), "invalid_grant");
    assert_eq!(redeem(&server, "pub", "made-up").await.error(), "invalid_grant");
}

#[tokio::test]
async fn authorization_errors_are_never_redirected_to_untrusted_uris() {
    let server = server();
    let cases = [
        authorize_uri("nobody", &[]),
        authorize_uri("pub", &[]).replace(
            &url::form_urlencoded::byte_serialize(CALLBACK.as_bytes()).collect::<String>(),
            "https%3A%2F%2Fevil.example%2Fcallback",
        ),
        format!("{}&redirect_uri=https%3A%2F%2Fevil.example%2F", authorize_uri("pub", &[])),
        format!("{}&client_id=conf", authorize_uri("pub", &[])),
        "/authorize?response_type=code".to_owned(),
        format!("/authorize?client_id=pub&redirect_uri={}", "http%3A%2F%2F127.0.0.1%3A3000%2Fcallback%2F..%2Fevil"),
        format!("/authorize?{}", "x".repeat(9000)),
    ];
    for uri in cases {
        let answer = get(&server, &uri).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(answer.headers.get("location").is_none(), "{uri}");
    }
}

#[tokio::test]
async fn authorization_errors_after_the_redirect_uri_is_trusted_go_back_with_iss() {
    let server = server();
    let base = [("client_id", "pub"), ("redirect_uri", "http://127.0.0.1:45678/callback"), ("state", "s")];
    let cases: [(&[(&str, &str)], &str); 7] = [
        (
            &[("response_type", "token"), ("code_challenge", CHALLENGE), ("code_challenge_method", "S256")],
            "unsupported_response_type",
        ),
        (&[("response_type", "code")], "invalid_request"),
        (
            &[("response_type", "code"), ("code_challenge", CHALLENGE), ("code_challenge_method", "plain")],
            "invalid_request",
        ),
        (
            &[("response_type", "code"), ("code_challenge", "short"), ("code_challenge_method", "S256")],
            "invalid_request",
        ),
        (
            &[
                ("response_type", "code"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
                ("scope", "admin"),
            ],
            "invalid_scope",
        ),
        (
            &[
                ("response_type", "code"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
                ("resource", "https://other.example/"),
            ],
            "invalid_target",
        ),
        (
            &[
                ("response_type", "code"),
                ("response_type", "code"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
            "invalid_request",
        ),
    ];
    for (extra, error) in cases {
        let mut pairs = base.to_vec();
        pairs.extend_from_slice(extra);
        let answer = get(&server, &format!("/authorize?{}", form(&pairs))).await;
        assert_eq!(answer.status, StatusCode::FOUND, "{extra:?}");
        let location = answer.location();
        assert_eq!(location.port(), Some(45678), "a loopback redirect URI on any port");
        assert_eq!(answer.query("error").as_deref(), Some(error), "{extra:?}");
        assert_eq!(answer.query("state").as_deref(), Some("s"));
        assert_eq!(answer.query("iss").as_deref(), Some(ISSUER));
        assert!(answer.query("code").is_none());
    }
}

#[tokio::test]
async fn authorization_by_post_works_like_get() {
    let server = server();
    let query = authorize_uri("pub", &[]).trim_start_matches("/authorize?").to_owned();
    let request =
        Request::post("/authorize").header("content-type", "application/x-www-form-urlencoded").body(query).unwrap();
    let answer = send(&server, request).await;
    assert_eq!(answer.status, StatusCode::FOUND);
    assert!(answer.query("code").is_some());
}

#[tokio::test]
async fn malformed_and_oversized_requests_get_errors() {
    let server = server();
    let big = "a".repeat(20 * 1024);
    let cases: Vec<(Request<String>, StatusCode, &str)> = vec![
        (
            Request::post("/token").header("content-type", "application/json").body("{}".into()).unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Request::post("/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("code={big}"))
                .unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
        ),
        (
            Request::post("/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=authorization_code".into())
                .unwrap(),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            Request::post("/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("client_id=pub&grant_type=password".into())
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            Request::post("/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("client_id=pub".into())
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Request::post("/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("client_id=pub&client_id=conf&grant_type=authorization_code".into())
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Request::post("/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("authorization", "Basic %%%")
                .body("grant_type=client_credentials".into())
                .unwrap(),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            Request::post("/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(vec!["a=1"; 100].join("&"))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (Request::get("/token").body(String::new()).unwrap(), StatusCode::METHOD_NOT_ALLOWED, "invalid_request"),
        (
            Request::post("/register").header("content-type", "application/json").body("[1,2]".into()).unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            Request::post("/register").header("content-type", "application/json").body("{not json".into()).unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            Request::post("/register")
                .header("content-type", "application/json")
                .body(format!("{{\"client_name\":\"{big}\"}}"))
                .unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
        ),
        (
            Request::post("/register").header("content-type", "text/plain").body("{}".into()).unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Request::post("/revoke")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("token=x".into())
                .unwrap(),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            Request::post("/revoke")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("client_id=pub".into())
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Request::post("/revoke")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("client_id=pub&token={big}"))
                .unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
        ),
        (Request::put("/authorize").body(String::new()).unwrap(), StatusCode::METHOD_NOT_ALLOWED, "invalid_request"),
        (
            Request::post("/authorize").header("content-type", "application/json").body("{}".into()).unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (Request::post("/jwks").body(String::new()).unwrap(), StatusCode::METHOD_NOT_ALLOWED, "invalid_request"),
        (Request::get("/nope").body(String::new()).unwrap(), StatusCode::NOT_FOUND, "invalid_request"),
    ];
    for (request, status, error) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let answer = send(&server, request).await;
        assert_eq!((answer.status, answer.error()), (status, error), "{what}: {:?}", answer.body);
        assert!(answer.body.get("access_token").is_none());
        assert!(answer.body.get("client_id").is_none());
    }
    // Still serving everyone else.
    let c = code(&server, "pub", &[]).await;
    assert_eq!(redeem(&server, "pub", &c).await.status, StatusCode::OK);
}

async fn register(server: &AuthorizationServer, metadata: Value) -> Answer {
    let request =
        Request::post("/register").header("content-type", "application/json").body(metadata.to_string()).unwrap();
    send(server, request).await
}

#[tokio::test]
async fn dynamic_registration_validates_and_hashes_secrets() {
    let server = server();
    let public = register(
        &server,
        json!({"redirect_uris": ["http://127.0.0.1:8123/cb"], "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"], "client_name": "CLI"}),
    )
    .await;
    assert_eq!(public.status, StatusCode::CREATED, "{:?}", public.body);
    assert_eq!(public.headers["cache-control"], "no-store");
    assert!(public.body.get("client_secret").is_none());
    let id = public.body["client_id"].as_str().unwrap().to_owned();
    let answer = get(&server, &authorize_uri(&id, &[]).replace("3000%2Fcallback", "1%2Fcb")).await;
    assert_eq!(answer.status, StatusCode::FOUND, "{:?}", answer.body);

    // RFC 7591's default method is client_secret_basic: a secret is issued, and required.
    let confidential = register(&server, json!({"redirect_uris": [CALLBACK]})).await;
    assert_eq!(confidential.body["token_endpoint_auth_method"], "client_secret_basic");
    let cid = confidential.body["client_id"].as_str().unwrap().to_owned();
    let secret = confidential.body["client_secret"].as_str().unwrap().to_owned();
    let c = code(&server, &cid, &[]).await;
    assert_eq!(redeem(&server, &cid, &c).await.error(), "invalid_client");
    let c = code(&server, &cid, &[]).await;
    let pairs = [
        ("grant_type", "authorization_code"),
        ("code", c.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", VERIFIER),
    ];
    assert_eq!(post_form(&server, "/token", &pairs, Some((&cid, &secret))).await.status, StatusCode::OK);

    let bad = [
        (json!({}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["http://evil.example/cb"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["https://a.example/cb#f"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["javascript:alert(1)"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": vec![CALLBACK; 11]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": "https://a.example/cb"}), "invalid_client_metadata"),
        (
            json!({"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "client_secret_jwt"}),
            "invalid_client_metadata",
        ),
        (json!({"redirect_uris": [CALLBACK], "grant_types": ["password"]}), "invalid_client_metadata"),
        (
            json!({"redirect_uris": [CALLBACK], "grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
            "invalid_client_metadata",
        ),
        (json!({"redirect_uris": [CALLBACK], "response_types": ["token"]}), "invalid_client_metadata"),
        (json!({"redirect_uris": [CALLBACK], "scope": "admin"}), "invalid_client_metadata"),
        (json!({"redirect_uris": [CALLBACK], "logo_uri": "http://a.example/logo.png"}), "invalid_client_metadata"),
        (
            json!({"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (json!({"redirect_uris": [CALLBACK], "client_name": 7}), "invalid_client_metadata"),
    ];
    for (metadata, error) in bad {
        let answer = register(&server, metadata.clone()).await;
        assert_eq!((answer.status, answer.error()), (StatusCode::BAD_REQUEST, error), "{metadata}");
    }
}

#[tokio::test]
async fn registration_and_requests_are_rate_limited_per_ip() {
    let server =
        AuthorizationServer::builder(ISSUER).resource(RESOURCE).consent(AutoApprove::as_user("a")).build().unwrap();
    let from = |ip: [u8; 4]| PeerAddr(std::net::SocketAddr::from((ip, 1234)));
    let mut statuses = Vec::new();
    for _ in 0..21 {
        let mut request = Request::post("/register")
            .header("content-type", "application/json")
            .body(json!({"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"}).to_string())
            .unwrap();
        request.extensions_mut().insert(from([10, 0, 0, 1]));
        statuses.push(send(&server, request).await.status);
    }
    assert!(statuses[..20].iter().all(|s| *s == StatusCode::CREATED), "{statuses:?}");
    assert_eq!(statuses[20], StatusCode::TOO_MANY_REQUESTS);
    let mut request = Request::post("/register")
        .header("content-type", "application/json")
        .body(json!({"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"}).to_string())
        .unwrap();
    request.extensions_mut().insert(from([10, 0, 0, 2]));
    assert_eq!(send(&server, request).await.status, StatusCode::CREATED, "another address has its own budget");
}

#[tokio::test]
async fn revocation_ends_the_refresh_family_for_its_own_client_only() {
    let server = server();
    let c = code(&server, "pub", &[("scope", "offline_access")]).await;
    let refresh = redeem(&server, "pub", &c).await.body["refresh_token"].as_str().unwrap().to_owned();
    // Another client cannot revoke it.
    let other = post_form(&server, "/revoke", &[("token", &refresh)], Some(("conf", "s3cret"))).await;
    assert_eq!(other.status, StatusCode::OK);
    let revoke = post_form(
        &server,
        "/revoke",
        &[("token", &refresh), ("client_id", "pub"), ("token_type_hint", "refresh_token")],
        None,
    )
    .await;
    assert_eq!(revoke.status, StatusCode::OK);
    assert_eq!(revoke.headers["cache-control"], "no-store");
    let after = post_form(
        &server,
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("client_id", "pub")],
        None,
    )
    .await;
    assert_eq!(after.error(), "invalid_grant");
}

#[tokio::test]
async fn client_credentials_for_confidential_clients_only() {
    let server = server();
    let machine = Client::confidential("machine", "m-secret", vec![]).unwrap().grant_types(&["client_credentials"]);
    server.register_client(machine).unwrap();
    let ok = post_form(
        &server,
        "/token",
        &[("grant_type", "client_credentials"), ("scope", "notes:read")],
        Some(("machine", "m-secret")),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    let c = claims(ok.body["access_token"].as_str().unwrap());
    assert_eq!((c["sub"].as_str(), c["aud"].as_str()), (Some("machine"), Some(RESOURCE)));
    assert!(ok.body.get("refresh_token").is_none());
    let public =
        post_form(&server, "/token", &[("grant_type", "client_credentials"), ("client_id", "pub")], None).await;
    assert_eq!(public.error(), "unauthorized_client");
}

#[tokio::test]
async fn a_confidential_only_server_does_not_advertise_none() {
    let server = server_with(|b| {
        b.token_endpoint_auth_methods([ClientAuthMethod::ClientSecretBasic, ClientAuthMethod::ClientSecretPost])
    });
    let metadata = get(&server, "/.well-known/oauth-authorization-server").await.body;
    assert_eq!(metadata["token_endpoint_auth_methods_supported"], json!(["client_secret_basic", "client_secret_post"]));
    let c = code(&server, "pub", &[]).await;
    assert_eq!(redeem(&server, "pub", &c).await.error(), "invalid_client", "none is not accepted either");
}

#[tokio::test]
async fn a_cimd_client_id_on_a_private_address_is_refused_without_a_fetch() {
    let server = server();
    for client_id in [
        "https://127.0.0.1/client.json",
        "https://10.0.0.8/client.json",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/client.json",
        "https://localhost/client.json",
    ] {
        let answer = get(&server, &authorize_uri(client_id, &[])).await;
        assert_eq!((answer.status, answer.error()), (StatusCode::UNAUTHORIZED, "invalid_client"), "{client_id}");
        assert!(answer.headers.get("location").is_none());
    }
    // With private addresses allowed (tests), the fetch is tried — and fails here, since nothing listens.
    let lenient = server_with(|b| b.client_id_metadata_documents(Some(CimdPolicy::allowing_private_addresses())));
    let answer = get(&lenient, &authorize_uri("https://127.0.0.1:1/client.json", &[])).await;
    assert_eq!(answer.error(), "invalid_client");
}

/// The consent page's HTML, its cookie and its form fields.
struct Page {
    status: StatusCode,
    headers: http::HeaderMap,
    html: String,
}

impl Page {
    fn fields(&self) -> Vec<(String, String)> {
        self.html
            .split("<input type=\"hidden\" ")
            .skip(1)
            .map(|tag| {
                let attr = |name: &str| {
                    let start = tag.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                    let end = start + tag[start..].find('"').unwrap();
                    tag[start..end]
                        .replace("&amp;", "&")
                        .replace("&quot;", "\"")
                        .replace("&lt;", "<")
                        .replace("&gt;", ">")
                };
                (attr("name"), attr("value"))
            })
            .collect()
    }

    fn cookie(&self) -> String {
        self.headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned()
    }
}

async fn page(server: &AuthorizationServer, request: Request<String>) -> Page {
    let response: Response<ResponseBody> = server.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let html = String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Page { status: parts.status, headers: parts.headers, html }
}

fn consent_post(fields: &[(String, String)], cookie: Option<&str>, choice: &str) -> Request<String> {
    let mut pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.push(("consent", choice));
    let mut request = Request::post("/authorize").header("content-type", "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.body(form(&pairs)).unwrap()
}

#[tokio::test]
async fn the_consent_page_shows_the_request_and_needs_its_csrf_token() {
    let server = server_with(|b| b.consent(ConsentPage::single_user("owner").unwrap()));
    let mut evil = Client::public("shown", vec![CALLBACK.into()]).name("<script>alert(1)</script> Notes");
    evil.logo_uri = Some("https://app.example/logo.png".into());
    server.register_client(evil).unwrap();
    let shown = page(
        &server,
        Request::get(authorize_uri("shown", &[("scope", "notes:read offline_access")])).body(String::new()).unwrap(),
    )
    .await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(shown.html.contains("&lt;script&gt;alert(1)&lt;/script&gt; Notes"), "escaped name");
    assert!(!shown.html.contains("<script"), "no script at all");
    assert!(shown.html.contains("<li>notes:read</li>"));
    assert!(shown.html.contains("offline_access"));
    assert!(shown.html.contains("127.0.0.1:3000"), "the redirect host");
    assert!(shown.html.contains(r#"src="https://app.example/logo.png""#));
    let csp = shown.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'") && !csp.contains("script-src")
    );
    assert_eq!(shown.headers["x-frame-options"], "DENY");
    let cookie = shown.cookie();
    assert!(shown.headers["set-cookie"].to_str().unwrap().contains("SameSite=Strict"));
    let fields = shown.fields();

    // Forged: no cookie, another browser's cookie, tampered parameters.
    let no_cookie = page(&server, consent_post(&fields, None, "approve")).await;
    assert_eq!(no_cookie.status, StatusCode::FORBIDDEN);
    let other =
        page(&server, consent_post(&fields, Some(&format!("keel_consent={}", "A".repeat(43))), "approve")).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    let mut tampered = fields.clone();
    for (k, v) in tampered.iter_mut() {
        if k == "redirect_uri" {
            *v = "http://127.0.0.1:4444/callback".into();
        }
    }
    assert_eq!(page(&server, consent_post(&tampered, Some(&cookie), "approve")).await.status, StatusCode::FORBIDDEN);

    // Approve: a code for the page's user; deny: access_denied.
    let approved = send(&server, consent_post(&fields, Some(&cookie), "approve")).await;
    assert_eq!(approved.status, StatusCode::FOUND);
    let code = approved.query("code").unwrap();
    assert_eq!(approved.query("iss").as_deref(), Some(ISSUER));
    let tokens = redeem(&server, "shown", &code).await;
    assert_eq!(claims(tokens.body["access_token"].as_str().unwrap())["sub"], "owner");
    let denied = send(&server, consent_post(&fields, Some(&cookie), "deny")).await;
    assert_eq!(denied.query("error").as_deref(), Some("access_denied"));
    assert_eq!(denied.query("state").as_deref(), Some("st4te"));
    assert!(denied.query("code").is_none());
}

#[tokio::test]
async fn private_key_jwt_clients_sign_single_use_assertions() {
    use keel_mcp::auth::client::AssertionKey;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};

    let server = server();
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    let jwk = json!({"kty": "EC", "crv": "P-256", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])});
    // Anyone may register, so a client_credentials client is the operator's to register, never dynamic.
    let dynamic = register(
        &server,
        json!({"token_endpoint_auth_method": "private_key_jwt", "grant_types": ["client_credentials"], "jwks": {"keys": [jwk.clone()]}}),
    )
    .await;
    assert_eq!((dynamic.status, dynamic.error()), (StatusCode::BAD_REQUEST, "invalid_client_metadata"));
    let mut machine = Client::public("machine-jwt", vec![]).grant_types(&["client_credentials"]);
    machine.auth_method = keel_mcp::auth::server::ClientAuthMethod::PrivateKeyJwt;
    machine.jwks = Some(json!({"keys": [jwk]}));
    server.register_client(machine).unwrap();
    let id = "machine-jwt".to_owned();
    let key = AssertionKey::from_pkcs8(pkcs8.as_ref()).unwrap();
    let grant = |assertion: String| {
        let server = server.clone();
        async move {
            post_form(
                &server,
                "/token",
                &[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                    ("client_assertion", &assertion),
                ],
                None,
            )
            .await
        }
    };
    let assertion = key.client_assertion(&id, ISSUER).unwrap();
    let ok = grant(assertion.clone()).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert_eq!(claims(ok.body["access_token"].as_str().unwrap())["client_id"], id.as_str());
    let replay = grant(assertion).await;
    assert_eq!((replay.status, replay.error()), (StatusCode::UNAUTHORIZED, "invalid_client"), "single use");
    let wrong_audience = grant(key.client_assertion(&id, "https://other.example").unwrap()).await;
    assert_eq!(wrong_audience.error(), "invalid_client");
    // Another key, same client id: refused.
    let other = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let forged = AssertionKey::from_pkcs8(other.as_ref()).unwrap().client_assertion(&id, ISSUER).unwrap();
    assert_eq!(grant(forged).await.error(), "invalid_client");
    // A tampered signature: refused.
    // One character in the middle of the signature (the last one also carries padding bits).
    let mut tampered: Vec<char> = key.client_assertion(&id, ISSUER).unwrap().chars().collect();
    let i = tampered.len() - 10;
    tampered[i] = if tampered[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    assert_eq!(grant(tampered).await.error(), "invalid_client");
}

/// A form POST from `ip`.
async fn post_form_from(
    server: &AuthorizationServer,
    ip: [u8; 4],
    pairs: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> Answer {
    let mut request = Request::post("/token").header("content-type", "application/x-www-form-urlencoded");
    if let Some((id, secret)) = basic {
        request = request.header("authorization", format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))));
    }
    let mut request = request.body(form(pairs)).unwrap();
    request.extensions_mut().insert(PeerAddr(std::net::SocketAddr::from((ip, 1234))));
    send(server, request).await
}

#[tokio::test]
async fn a_stranger_cannot_spend_a_clients_rate_limit() {
    // Default limits: 60 token requests a minute per client and address before authentication.
    let server = server_with(|b| b.rate_limits(RateLimits::default()));
    let attacker = [10, 0, 0, 66];
    let junk = [("grant_type", "client_credentials")];
    let mut statuses = Vec::new();
    for _ in 0..61 {
        statuses.push(post_form_from(&server, attacker, &junk, Some(("conf", "wrong"))).await.status);
        statuses.push(
            post_form_from(
                &server,
                attacker,
                &[("grant_type", "refresh_token"), ("refresh_token", "x"), ("client_id", "pub")],
                None,
            )
            .await
            .status,
        );
    }
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS), "the attacker is slowed down");
    // The real clients, from their own addresses, are not.
    let c = code(&server, "pub", &[]).await;
    let ok = post_form_from(&server, [10, 0, 0, 1], &code_exchange(&c, Some("pub")), None).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    let c = code(&server, "conf", &[]).await;
    let ok = post_form_from(&server, [10, 0, 0, 2], &code_exchange(&c, None), Some(("conf", "s3cret"))).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
}

async fn refresh_with(server: &AuthorizationServer, token: &str) -> Answer {
    post_form(
        server,
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", "pub")],
        None,
    )
    .await
}

#[tokio::test]
async fn a_refresh_loop_does_not_fill_the_store() {
    let mut limits = keel_mcp::auth::server::StoreLimits::default();
    limits.max_refresh_tokens = 2;
    let server = server_with(|b| b.store(keel_mcp::auth::server::MemoryStore::with_limits(limits)));
    let offline = [("scope", "notes:read offline_access")];
    let c = code(&server, "pub", &offline).await;
    let first = redeem(&server, "pub", &c).await.body["refresh_token"].as_str().unwrap().to_owned();
    // Rotation replaces a grant's token: spent ones take no room, however long the loop.
    let mut current = first.clone();
    for round in 0..20 {
        let answer = refresh_with(&server, &current).await;
        assert_eq!(answer.status, StatusCode::OK, "round {round}: {:?}", answer.body);
        current = answer.body["refresh_token"].as_str().unwrap().to_owned();
    }
    // A second grant fits; a third finds the store full and says so, and the others keep refreshing.
    let c = code(&server, "pub", &offline).await;
    let other = redeem(&server, "pub", &c).await.body["refresh_token"].as_str().unwrap().to_owned();
    let c = code(&server, "pub", &offline).await;
    let full = redeem(&server, "pub", &c).await;
    assert_eq!((full.status, full.error()), (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"));
    assert!(full.body["error_description"].as_str().unwrap().contains("refresh"), "{:?}", full.body);
    assert!(full.body.get("access_token").is_none());
    let answer = refresh_with(&server, &current).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    current = answer.body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh_with(&server, &other).await.status, StatusCode::OK);
    // The very first token, spent twenty rotations ago, is still recognised: its reuse revokes the grant.
    assert_eq!(refresh_with(&server, &first).await.error(), "invalid_grant");
    assert_eq!(refresh_with(&server, &current).await.error(), "invalid_grant", "the family is revoked");
    // And its room is free again.
    let c = code(&server, "pub", &offline).await;
    assert_eq!(redeem(&server, "pub", &c).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_registered_scope_does_not_stop_a_later_step_up() {
    // MCP clients register with the scope of their first challenge and ask for more after a 403
    // insufficient_scope; anyone may register a new client anyway, so the registered scope is no limit.
    let server = server();
    let registered = register(
        &server,
        json!({"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none", "scope": "notes:read"}),
    )
    .await;
    assert_eq!(registered.status, StatusCode::CREATED, "{:?}", registered.body);
    let id = registered.body["client_id"].as_str().unwrap().to_owned();
    let c = code(&server, &id, &[("scope", "notes:read notes:write")]).await;
    let tokens = redeem(&server, &id, &c).await;
    assert_eq!(claims(tokens.body["access_token"].as_str().unwrap())["scope"], "notes:read notes:write");
    let unsupported = get(&server, &authorize_uri(&id, &[("scope", "admin")])).await;
    assert_eq!(unsupported.query("error").as_deref(), Some("invalid_scope"));
}
