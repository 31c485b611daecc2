//! What every request meets before a handler reads anything of it, in
//! order: a declared `Content-Length` over the limit is refused at once
//! (413); the caller is authenticated from the headers alone (401 without
//! reading the body); then the body is read whole within a deadline (408)
//! and a size limit (413). A refused request's connection is closed, so a
//! body sent after the headers is never read.
//!
//! Handlers check their caller again (the same [`super::access`] checks):
//! this layer is what keeps an unauthenticated body out of memory, not
//! the only check.

use super::App;
use super::access;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

fn refuse(status: StatusCode, error: impl Into<String>) -> Response {
    let mut response = (status, axum::Json(json!({ "error": error.into() }))).into_response();
    response
        .headers_mut()
        .insert("connection", HeaderValue::from_static("close"));
    response
}

/// A path segment as axum's `Path` decodes it.
fn decoded(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// The declared length, then the caller, from the headers alone.
pub async fn authenticate(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(length) = declared
        && length > app.options.max_body as u64
    {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is {length} bytes; this service takes at most {}",
                app.options.max_body
            ),
        );
    }
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let headers = request.headers();
    let checked = match segments.as_slice() {
        ["v1", "tenants", tenant, "tokens", ..] => {
            let _ = tenant;
            access::operator(&app, headers)
        }
        ["v1", "tenants", tenant, ..] => access::tenant(&app, headers, &decoded(tenant))
            .await
            .map(drop),
        ["v1", ..] => {
            // The fake Twilio's list: a tenant token names its tenant.
            let named = request.uri().query().and_then(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "tenant")
                    .map(|(_, v)| v.into_owned())
            });
            match named {
                Some(tenant) => access::tenant(&app, headers, &tenant).await.map(drop),
                None => access::operator(&app, headers),
            }
        }
        ["cometchat", tenant, "webhook"] => access::webhook(&app, headers, &decoded(tenant)).await,
        _ => Ok(()),
    };
    match checked {
        Ok(()) => next.run(request).await,
        Err(refused) => {
            let mut response = refused.into_response();
            response
                .headers_mut()
                .insert("connection", HeaderValue::from_static("close"));
            response
        }
    }
}

/// The body, read whole within `--body-timeout` and `--max-body`.
pub async fn read_body(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let limit = app.options.max_body;
    let read = tokio::time::timeout(app.options.body_timeout, axum::body::to_bytes(body, limit));
    match read.await {
        Err(_) => refuse(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {:?}",
                app.options.body_timeout
            ),
        ),
        Ok(Err(_)) => refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over {limit} bytes, or was cut off"),
        ),
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}
