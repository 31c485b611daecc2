//! The routes and their OpenAPI document, from one list: each handler's
//! `#[utoipa::path]` names its method, path, parameters, body and answers,
//! and `utoipa-axum` registers the route and its document entry together,
//! so a route cannot be served undocumented or documented unserved.
//! What every `/v1/` route may answer (the guard's refusals, a body it
//! cannot read, the database down) is added to each by [`Common`].

use super::App;
use super::api;
use super::{activity, credentials};
use std::sync::{Arc, LazyLock};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sms-notification service",
        description = "Texts offline users about unread one-on-one messages, through Twilio. \
                       The README says what each call does; this document says what each \
                       route takes and answers.",
    ),
    modifiers(&Schemes),
    tags(
        (name = "settings", description = "a tenant's settings, their validation and preview"),
        (name = "users", description = "users pushed by a chat server without a directory of its own"),
        (name = "events", description = "the chat server's events"),
        (name = "state", description = "what a tenant's state holds, its log, what was not sent"),
        (name = "credentials", description = "webhook auth, API tokens, the CometChat app"),
        (name = "webhooks", description = "outside systems' webhooks: CometChat's events, Twilio's status callbacks"),
        (name = "service", description = "health, metrics, this document"),
        (name = "page", description = "the dashboard page"),
        (name = "fakes", description = "in-process stand-ins for Twilio and CometChat (--fake-twilio, --fake-cometchat)"),
    )
)]
struct ApiDoc;

/// Every route, with its document entry.
pub fn routes() -> OpenApiRouter<Arc<App>> {
    use api::{events, fakes, settings, state, users, webhooks};
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(api::healthz))
        .routes(routes!(api::openapi))
        .routes(routes!(api::metrics))
        .routes(routes!(api::page))
        .routes(routes!(settings::put_settings, settings::get_settings))
        .routes(routes!(settings::validate_settings))
        .routes(routes!(settings::post_preview))
        .routes(routes!(users::put_user))
        .routes(routes!(users::post_presence))
        .routes(routes!(events::post_message))
        .routes(routes!(events::post_receipt))
        .routes(routes!(events::post_edit))
        .routes(routes!(events::post_deletion))
        .routes(routes!(state::get_state))
        .routes(routes!(state::get_logs))
        .routes(routes!(state::get_quarantine, state::delete_quarantine))
        .routes(routes!(activity::get_unsent))
        .routes(routes!(activity::get_events))
        .routes(routes!(credentials::put_webhook, credentials::get_webhook))
        .routes(routes!(credentials::post_token, credentials::get_tokens))
        .routes(routes!(credentials::delete_token))
        .routes(routes!(
            credentials::put_cometchat,
            credentials::get_cometchat,
            credentials::delete_cometchat
        ))
        .routes(routes!(webhooks::post_status))
        .routes(routes!(webhooks::post_cometchat))
        .routes(routes!(fakes::get_fake_sms))
        .routes(routes!(fakes::fake_cometchat))
}

/// The document, as JSON, built once.
pub fn document() -> &'static String {
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
        let (_, mut document) = routes().split_for_parts();
        // After the routes are in: `modifiers(…)` runs before them.
        Common.modify(&mut document);
        document
            .to_pretty_json()
            .expect("the OpenAPI document serialises")
    });
    &DOCUMENT
}

/// Who may call: the operator's token, a tenant's, CometChat's Basic auth,
/// Twilio's signature.
struct Schemes;

impl Modify for Schemes {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(description.to_owned());
            SecurityScheme::Http(http)
        };
        components.add_security_scheme(
            "operator",
            bearer("the operator's token (--operator-token): every tenant's routes"),
        );
        components.add_security_scheme(
            "tenant",
            bearer(
                "a token the operator minted for the tenant in the path (POST \
                 /v1/tenants/{tenant}/tokens); it opens only that tenant's routes",
            ),
        );
        components.add_security_scheme(
            "cometchat",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        components.add_security_scheme(
            "twilio",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Twilio-Signature",
                "Twilio's signature of the callback, with the tenant's auth token",
            ))),
        );
    }
}

/// What any `/v1/` route may answer besides its own: the guard's and the
/// extractors' refusals and a database that does not answer.
struct Common;

impl Modify for Common {
    fn modify(&self, doc: &mut Document) {
        let common = [
            (
                "400",
                "a path, query or body this route does not take (what is wrong, by field)",
            ),
            ("401", "no token, or one that does not open this route"),
            ("413", "a body over --max-body"),
            ("503", "the database did not answer: try again"),
        ];
        for (path, item) in doc.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                for (status, description) in common {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| {
                            RefOr::T(
                                ResponseBuilder::new()
                                    .description(description)
                                    .content(
                                        "application/json",
                                        utoipa::openapi::ContentBuilder::new()
                                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                                            .build(),
                                    )
                                    .build(),
                            )
                        });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    /// Every `$ref` names a schema the document holds, every answer is
    /// described, every operation says what it answers when it works
    /// (an external validator, openapi-spec-validator, found answers
    /// without a description), and every `/v1/` operation
    /// names who may call it and the common refusals.
    #[test]
    fn the_document_is_whole() {
        let doc: Value = serde_json::from_str(super::document()).unwrap();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 20, "{} references", found.len());
        for r in found {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{r} is not in the document"
            );
        }
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                operations += 1;
                let answers = op["responses"].as_object().unwrap();
                // Each `{name}` of the path is a path parameter of its own.
                for name in path.split('{').skip(1).filter_map(|p| p.split('}').next()) {
                    let declared = op["parameters"].as_array().is_some_and(|ps| {
                        ps.iter().any(|p| p["in"] == "path" && p["name"] == name)
                    });
                    assert!(declared, "{method} {path}: no path parameter {name}");
                }
                // OpenAPI requires one for every answer.
                for (status, answer) in answers {
                    assert!(
                        answer["description"]
                            .as_str()
                            .is_some_and(|d| !d.is_empty()),
                        "{method} {path} {status} has no description"
                    );
                }
                assert!(
                    answers.contains_key("200") || answers.contains_key("204"),
                    "{method} {path} documents no success"
                );
                if path.starts_with("/v1/") {
                    assert!(op["security"].is_array(), "{method} {path}: who may call?");
                    for status in ["400", "401", "413", "503"] {
                        assert!(answers.contains_key(status), "{method} {path}: {status}");
                    }
                }
            }
        }
        assert_eq!(operations, 32, "every route of the router");
    }
}
