//! Token revocation (RFC 7009). Revoking a refresh token ends its whole family. Access tokens are
//! self-contained JWTs the resource server checks on its own; they cannot be recalled and simply expire, so
//! a request to revoke one is answered like one for an unknown token (200, as §2.2 says).

use bytes::Bytes;
use http::{Request, StatusCode};
use serde_json::json;

use super::Inner;
use super::client_auth::authenticated_form;
use super::error::OAuthError;
use super::response;
use super::token::refresh_token_family;
use crate::auth::client::token::now_secs;
use crate::server::http::ResponseBody;

pub(crate) async fn handle<B>(inner: &Inner, request: Request<B>) -> Result<http::Response<ResponseBody>, OAuthError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (params, client) = authenticated_form(inner, request).await?;
    let token = params.require("token")?;
    // The hint only speeds up a lookup (§2.1); there is one lookup here, so it is read only to refuse repeats.
    params.get("token_type_hint")?;
    // Only the client a token was issued to may revoke it; for anyone else it is "unknown" (§2.2).
    if let Some((_, family)) = refresh_token_family(token)
        && let Some(grant) = inner.store.refresh_family(&family, now_secs())?
        && grant.client_id == client.client_id
    {
        inner.store.revoke_family(&grant.family, grant.expires_at)?;
    }
    Ok(response::json(StatusCode::OK, &json!({})))
}
