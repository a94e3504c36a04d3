//! Runs started from outside: `POST /hooks/{pipeline}/{trigger}` for signed
//! webhook deliveries and `POST /api/triggers/{pipeline}/{trigger}` for a
//! named API trigger. Neither needs an API token: a webhook is checked by
//! its signature, an API trigger by its own token (or, for `api: true`, an
//! operator's API token). A repeated delivery id or `Idempotency-Key` answers
//! the run the first request created.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sluice_core::spec::{TriggerKind, TriggerSpec};
use sluice_engine::TriggerRequest;
use sluice_engine::sluice_store::InvokedBy;
use sluice_engine::tokens::Role;
use sluice_proto::{ErrorBody, RunEnvelope};

use crate::AppState;
use crate::convert;
use crate::error::{ApiError, ApiResult, Code};
use crate::extract::{MAX_BODY_BYTES, check_id, parse_json};
use crate::webhook::{self, Refusal};

/// The trigger `name` of pipeline `pipeline`, if it is of the kind `want`.
fn find_trigger(
    state: &AppState,
    pipeline: &str,
    name: &str,
    want: &str,
) -> ApiResult<TriggerSpec> {
    check_id("pipeline name", pipeline)?;
    check_id("trigger name", name)?;
    let project = state.engine.project();
    let loaded = project
        .pipeline(pipeline)
        .ok_or_else(|| ApiError::not_found(format!("no pipeline named `{pipeline}`")))?;
    let trigger = loaded
        .spec
        .trigger(name)
        .filter(|trigger| trigger.kind.key() == want)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "pipeline `{pipeline}` has no {want} trigger named `{name}`"
            ))
        })?;
    if !trigger.enabled {
        return Err(ApiError::new(
            Code::Conflict,
            format!("trigger `{name}` of pipeline `{pipeline}` is disabled"),
        )
        .with_hint("set `enabled: true` on the trigger in the pipeline file"));
    }
    Ok(trigger.clone())
}

/// The body of a request, refused with 413 past the limit.
async fn body(request: Request) -> ApiResult<Bytes> {
    Bytes::from_request(request, &())
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    Code::PayloadTooLarge,
                    format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
                )
            } else {
                ApiError::bad_request(format!("cannot read the request body: {rejection}"))
            }
        })
}

/// Variables taken from a JSON payload by the trigger's `variables_from`
/// pointers; a pointer that finds nothing sets nothing.
fn variables_from(
    trigger: &TriggerSpec,
    payload: Option<&serde_json::Value>,
) -> BTreeMap<String, serde_json::Value> {
    let Some(payload) = payload else {
        return BTreeMap::new();
    };
    trigger
        .variables_from
        .iter()
        .filter_map(|(name, pointer)| {
            payload
                .pointer(pointer)
                .map(|value| (name.clone(), value.clone()))
        })
        .collect()
}

/// Starts the run of a trigger (or finds again the one an earlier request
/// with the same key started) and answers it.
async fn start(
    state: &AppState,
    pipeline: &str,
    trigger: &TriggerSpec,
    variables: BTreeMap<String, serde_json::Value>,
    invoked_by: InvokedBy,
    idempotency_key: Option<String>,
) -> ApiResult<Response> {
    let run_id = state
        .engine
        .trigger_run(TriggerRequest {
            pipeline: pipeline.to_owned(),
            variables,
            trigger_variables: trigger.variables.clone(),
            priority: None,
            invoked_by,
            idempotency_key,
            owner: None,
        })
        .await?;
    let run = state.engine.get_run(&run_id).await?;
    state.engine.wake();
    Ok((StatusCode::CREATED, Json(convert::envelope(run))).into_response())
}

/// A webhook delivery: verified by the trigger's scheme and secrets, then
/// one run per delivery id.
#[utoipa::path(post, path = "/hooks/{pipeline}/{trigger}", tag = "triggers",
    params(
        ("pipeline" = String, Path, description = "The pipeline's name"),
        ("trigger" = String, Path, description = "The webhook trigger's name")),
    request_body(content = String, description = "The delivery, as the sender signed it"),
    responses(
        (status = 201, description = "The run of this delivery (the same run for a repeated delivery id)", body = RunEnvelope),
        (status = 401, description = "A missing, bad or stale signature; nothing was created", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn webhook(
    State(state): State<AppState>,
    Path((pipeline, name)): Path<(String, String)>,
    request: Request,
) -> ApiResult<Response> {
    let trigger = find_trigger(&state, &pipeline, &name, "webhook")?;
    let TriggerKind::Webhook {
        scheme,
        secret_env,
        secret_file,
    } = &trigger.kind
    else {
        return Err(ApiError::internal(
            "a webhook trigger without webhook settings",
        ));
    };
    let headers = request.headers().clone();
    let body = body(request).await?;
    let secrets = read_secrets(&state, secret_env.as_deref(), secret_file.as_deref())?;
    let now = state.engine.clock().now().as_second();
    let delivery = webhook::verify(*scheme, &secrets, &headers, &body, now).map_err(|refusal| {
        let code = match refusal {
            Refusal::MissingHeader(_) | Refusal::BadHeader(_) => Code::BadRequest,
            Refusal::Stale | Refusal::BadSignature => Code::Unauthorized,
        };
        ApiError::new(code, refusal.to_string())
    })?;
    let payload: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    if payload.is_none() && !trigger.variables_from.is_empty() {
        return Err(ApiError::invalid(
            "the delivery is not JSON, so `variables_from` cannot read it",
        ));
    }
    let variables = variables_from(&trigger, payload.as_ref());
    start(
        &state,
        &pipeline,
        &trigger,
        variables,
        InvokedBy {
            kind: "webhook".to_owned(),
            name: Some(name.clone()),
            actor: Some(format!("delivery {}", delivery.id)),
            parent_run_id: None,
        },
        Some(format!("webhook:{name}:{}", delivery.id)),
    )
    .await
}

/// The secrets of a webhook trigger, read at each delivery so that a
/// rotated secret takes effect without a restart.
fn read_secrets(
    state: &AppState,
    secret_env: Option<&str>,
    secret_file: Option<&str>,
) -> ApiResult<Vec<Vec<u8>>> {
    let text = match (secret_env, secret_file) {
        (Some(variable), _) => std::env::var(variable).map_err(|_| {
            ApiError::new(
                Code::Unavailable,
                "the trigger's secret is not configured on the server",
            )
            .with_hint(format!(
                "set the environment variable `{variable}` for `sluice up`"
            ))
        })?,
        (None, Some(file)) => {
            let path = state.engine.project().dir.join(file);
            std::fs::read_to_string(&path).map_err(|error| {
                tracing::error!(path = %path.display(), %error, "cannot read a webhook secret");
                ApiError::new(
                    Code::Unavailable,
                    "the trigger's secret file cannot be read on the server",
                )
            })?
        }
        (None, None) => String::new(),
    };
    let secrets = webhook::parse_secrets(&text);
    if secrets.is_empty() {
        return Err(ApiError::new(
            Code::Unavailable,
            "the trigger's secret is empty on the server",
        ));
    }
    Ok(secrets)
}

/// An API trigger: its own token (or an operator's API token), a JSON body
/// of variables (read through `variables_from` when the trigger has it),
/// `Idempotency-Key` honoured.
#[utoipa::path(post, path = "/api/triggers/{pipeline}/{trigger}", tag = "triggers",
    params(
        ("pipeline" = String, Path, description = "The pipeline's name"),
        ("trigger" = String, Path, description = "The API trigger's name"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to repeat")),
    request_body(content = Object, description = "The run's variables by name; with `variables_from`, a document its pointers read"),
    responses(
        (status = 201, description = "The run (the same run on a replay)", body = RunEnvelope),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn api_trigger(
    State(state): State<AppState>,
    Path((pipeline, name)): Path<(String, String)>,
    request: Request,
) -> ApiResult<Response> {
    let trigger = find_trigger(&state, &pipeline, &name, "api")?;
    let TriggerKind::Api { token_env } = &trigger.kind else {
        return Err(ApiError::internal("an API trigger without API settings"));
    };
    let headers = request.headers().clone();
    let actor = authorize_trigger(&state, &headers, token_env.as_deref()).await?;
    let bytes = body(request).await?;
    // The body is the run's variables, or, when the trigger maps variables
    // with `variables_from`, a document those pointers read.
    let payload: serde_json::Map<String, serde_json::Value> = parse_json(&bytes)?;
    let variables = if trigger.variables_from.is_empty() {
        payload.into_iter().collect()
    } else {
        variables_from(&trigger, Some(&serde_json::Value::Object(payload)))
    };
    let key = crate::routes::pipelines::idempotency_key(&headers)?;
    start(
        &state,
        &pipeline,
        &trigger,
        variables,
        InvokedBy {
            kind: "api".to_owned(),
            name: Some(name.clone()),
            actor: Some(actor),
            parent_run_id: None,
        },
        key.map(|key| format!("api:{name}:{key}")),
    )
    .await
}

/// Who called an API trigger: the trigger's own token, or an API token
/// with at least the operator role.
async fn authorize_trigger(
    state: &AppState,
    headers: &HeaderMap,
    token_env: Option<&str>,
) -> ApiResult<String> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            ApiError::new(Code::Unauthorized, "this trigger needs its token")
                .with_hint("send `Authorization: Bearer TOKEN`")
        })?;
    if let Some(variable) = token_env
        && let Ok(expected) = std::env::var(variable)
        && !expected.is_empty()
        && constant_time_eq(expected.trim().as_bytes(), presented.as_bytes())
    {
        return Ok(format!("trigger token ({variable})"));
    }
    match state.engine.authenticate(&presented).await? {
        Some(owner) if owner.role.allows(Role::Operator) => Ok(owner.name),
        Some(owner) => Err(ApiError::new(
            Code::Forbidden,
            format!(
                "token `{}` has the role `{}`; a trigger needs `operator`",
                owner.name, owner.role
            ),
        )),
        None => Err(ApiError::new(
            Code::Unauthorized,
            "the token is neither the trigger's token nor a valid API token",
        )),
    }
}

/// Compares two secrets in time that depends only on their lengths.
fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}
