//! The built-in consent page: a server-rendered HTML form (no script at all) that shows who is asking —
//! the client's name and logo, the host the answer goes to, the scopes and the resource — and posts the
//! user's choice back to the authorization endpoint.
//!
//! Cross-site request forgery is stopped twice over: the form carries a token that is an HMAC, under a key
//! only this process knows, of a per-browser cookie (`SameSite=Strict`, `HttpOnly`) and of every parameter of
//! the request, valid for ten minutes; and the page may not be framed (`frame-ancestors 'none'`,
//! `X-Frame-Options: DENY`), so it cannot be clicked through from another site. Its Content Security Policy
//! allows no script, only an https logo, and form posts only to itself and the client's redirect URI.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, HeaderValue, SET_COOKIE};
use http::{HeaderMap, Method, Response, StatusCode};

use super::consent::{Consent, ConsentDecision, ConsentRequest};
use super::error::AuthServerError;
use crate::auth::client::pkce::constant_time_eq;
use crate::auth::client::token::now_secs;
use crate::server::http::ResponseBody;

/// The cookie that ties a consent form to the browser it was shown in.
const COOKIE_NAME: &str = "keel_consent";
/// How long a rendered form can be submitted.
const FORM_TTL: u64 = 600;
/// The form fields the page adds; everything else is the original request.
const OWN_FIELDS: [&str; 2] = ["consent_token", "consent"];

type UserFn = dyn Fn(&HeaderMap) -> Option<String> + Send + Sync;

/// The built-in consent page. Who the user is comes from a function of the request headers (your login's
/// session cookie, a header set by an authenticating proxy); [`ConsentPage::single_user`] is for a server
/// with one owner, where reaching the page is being that user — put it behind your own login otherwise.
pub struct ConsentPage {
    user: Arc<UserFn>,
    key: [u8; 32],
}

impl std::fmt::Debug for ConsentPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConsentPage(…)")
    }
}

impl ConsentPage {
    /// A page whose user is `user(headers)`; `None` answers 401 (log in first). Fails only when the system
    /// has no randomness for the CSRF key.
    pub fn new(user: impl Fn(&HeaderMap) -> Option<String> + Send + Sync + 'static) -> Result<Self, AuthServerError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| AuthServerError::Key(format!("no randomness for the CSRF key: {e}")))?;
        Ok(ConsentPage { user: Arc::new(user), key })
    }

    /// A page for a server with one user, `subject`.
    pub fn single_user(subject: impl Into<String>) -> Result<Self, AuthServerError> {
        let subject = subject.into();
        Self::new(move |_| Some(subject.clone()))
    }

    /// HMAC over the browser's cookie, the expiry and every parameter but the page's own.
    fn token(&self, cookie: &str, expires: u64, params: &[(String, String)]) -> String {
        let mut mac = hmac_sha256::HMAC::new(self.key);
        mac.update(cookie.as_bytes());
        mac.update(b"\0");
        mac.update(expires.to_string().as_bytes());
        let mut fields: Vec<&(String, String)> =
            params.iter().filter(|(k, _)| !OWN_FIELDS.contains(&k.as_str())).collect();
        fields.sort();
        for (k, v) in fields {
            mac.update(b"\0");
            mac.update(k.as_bytes());
            mac.update(b"=");
            mac.update(v.as_bytes());
        }
        format!("{expires}.{}", URL_SAFE_NO_PAD.encode(mac.finalize()))
    }

    fn token_is_valid(&self, cookie: &str, token: &str, params: &[(String, String)]) -> bool {
        let Some((expires, _)) = token.split_once('.') else { return false };
        let Ok(expires) = expires.parse::<u64>() else { return false };
        expires > now_secs() && constant_time_eq(&self.token(cookie, expires, params), token)
    }
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE_NAME && value.len() == 43)
        .map(|(_, value)| value)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

impl Consent for ConsentPage {
    fn decide<'a>(&'a self, request: ConsentRequest<'a>) -> Pin<Box<dyn Future<Output = ConsentDecision> + Send + 'a>> {
        Box::pin(std::future::ready(self.decide_now(&request)))
    }
}

impl ConsentPage {
    fn decide_now(&self, request: &ConsentRequest<'_>) -> ConsentDecision {
        let Some(subject) = (self.user)(request.headers) else {
            return ConsentDecision::Respond(page(
                StatusCode::UNAUTHORIZED,
                "Sign in first",
                "<p>Sign in, then try again.</p>",
                None,
                None,
            ));
        };
        let choice = param(request.params, "consent");
        if *request.method == Method::POST && choice.is_some() {
            let valid = match (cookie(request.headers), param(request.params, "consent_token")) {
                (Some(cookie), Some(token)) => self.token_is_valid(cookie, token, request.params),
                _ => false,
            };
            if !valid {
                let body = "<p>This consent form expired or did not come from this server. Go back to the application and start again.</p>";
                return ConsentDecision::Respond(page(
                    StatusCode::FORBIDDEN,
                    "Consent form not accepted",
                    body,
                    None,
                    None,
                ));
            }
            return match choice {
                Some("approve") => ConsentDecision::Approve { subject, scopes: request.scopes.to_vec() },
                _ => ConsentDecision::Deny,
            };
        }
        self.render(request, &subject)
    }

    fn render(&self, request: &ConsentRequest<'_>, subject: &str) -> ConsentDecision {
        let (cookie_value, new_cookie) = match cookie(request.headers) {
            Some(c) => (c.to_owned(), None),
            None => match crate::auth::client::pkce::random_token() {
                Ok(c) => (c.clone(), Some(c)),
                Err(_) => return ConsentDecision::Deny,
            },
        };
        let token = self.token(&cookie_value, now_secs() + FORM_TTL, request.params);
        let client = request.client;
        let name = client.client_name.as_deref().unwrap_or(&client.client_id);
        let redirect_host = url::Url::parse(request.redirect_uri)
            .ok()
            .and_then(|u| {
                u.host_str().map(|h| match u.port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_owned(),
                })
            })
            .unwrap_or_else(|| request.redirect_uri.to_owned());
        let mut body = String::new();
        if let Some(logo) = client.logo_uri.as_deref() {
            body.push_str(&format!(r#"<img class="logo" src="{}" alt="" width="64" height="64">"#, escape(logo)));
        }
        body.push_str(&format!(
            "<p><strong id=\"client\">{}</strong> wants to access <span id=\"resource\">{}</span> as <strong>{}</strong>.</p>",
            escape(name),
            escape(request.resource),
            escape(subject)
        ));
        body.push_str(&format!(
            "<p>After you answer, you will be sent to <strong id=\"redirect-host\">{}</strong>.</p>",
            escape(&redirect_host)
        ));
        if request.scopes.is_empty() {
            body.push_str("<p id=\"no-scopes\">It asks for no particular permission.</p>");
        } else {
            body.push_str(
                "<h2 id=\"scopes-heading\">It asks to</h2><ul id=\"scopes\" aria-labelledby=\"scopes-heading\">",
            );
            for scope in request.scopes {
                body.push_str(&format!("<li>{}</li>", escape(&scope_text(scope))));
            }
            body.push_str("</ul>");
        }
        body.push_str("<form method=\"post\">");
        for (k, v) in request.params.iter().filter(|(k, _)| !OWN_FIELDS.contains(&k.as_str())) {
            body.push_str(&format!(r#"<input type="hidden" name="{}" value="{}">"#, escape(k), escape(v)));
        }
        body.push_str(&format!(r#"<input type="hidden" name="consent_token" value="{}">"#, escape(&token)));
        body.push_str(r#"<button type="submit" name="consent" value="approve" id="approve">Allow</button> "#);
        body.push_str(r#"<button type="submit" name="consent" value="deny" id="deny">Deny</button></form>"#);
        let form_target = url::Url::parse(request.redirect_uri).ok().map(|u| u.origin().ascii_serialization());
        let title = format!("Allow {name}?");
        ConsentDecision::Respond(page(StatusCode::OK, &title, &body, new_cookie.as_deref(), form_target.as_deref()))
    }
}

/// What a scope means, for the user.
fn scope_text(scope: &str) -> String {
    match scope {
        super::OFFLINE_ACCESS => "stay signed in (offline_access: a refresh token)".to_owned(),
        other => other.to_owned(),
    }
}

/// HTML-escapes text for element content and double-quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;line-height:1.5;color:#111}\
button{font-size:1rem;padding:.5rem 1.25rem;margin-right:.5rem;border-radius:.25rem;border:1px solid #333;cursor:pointer}\
#approve{background:#1a5fb4;color:#fff}#deny{background:#fff;color:#111}button:focus{outline:3px solid #f5a623}\
.logo{float:right;margin-left:1rem}li{margin:.25rem 0}";

fn page(
    status: StatusCode,
    title: &str,
    body: &str,
    set_cookie: Option<&str>,
    form_target: Option<&str>,
) -> Response<ResponseBody> {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style></head><body><main><h1>{t}</h1>{body}</main></body></html>",
        t = escape(title)
    );
    let mut response = Response::new(ResponseBody::full(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    // Chrome applies form-action to the redirect that follows the post, so the client's origin is listed.
    let csp = format!(
        "default-src 'none'; img-src https:; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'{}",
        form_target.map(|t| format!(" {t}")).unwrap_or_default()
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert("content-security-policy", value);
    }
    if let Some(cookie) = set_cookie {
        let value = format!("{COOKIE_NAME}={cookie}; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600");
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(SET_COOKIE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }

    #[test]
    fn tokens_bind_cookie_params_and_time() {
        let page = ConsentPage::single_user("u").unwrap();
        let params = vec![("client_id".to_owned(), "c".to_owned()), ("scope".to_owned(), "a".to_owned())];
        let cookie = "x".repeat(43);
        let token = page.token(&cookie, now_secs() + 60, &params);
        assert!(page.token_is_valid(&cookie, &token, &params));
        let mut with_own = params.clone();
        with_own.push(("consent".into(), "approve".into()));
        assert!(page.token_is_valid(&cookie, &token, &with_own), "the page's own fields are not signed");
        assert!(!page.token_is_valid(&"y".repeat(43), &token, &params), "another browser");
        let mut widened = params.clone();
        widened[1].1 = "a b".into();
        assert!(!page.token_is_valid(&cookie, &token, &widened), "other parameters");
        let expired = page.token(&cookie, now_secs() - 1, &params);
        assert!(!page.token_is_valid(&cookie, &expired, &params));
        assert!(
            !ConsentPage::single_user("u").unwrap().token_is_valid(&cookie, &token, &params),
            "another server's key"
        );
        assert!(!page.token_is_valid(&cookie, "garbage", &params));
    }
}
