//! `/api/agent/...`: the agent protocol spoken by remote agents (`sluice
//! agent`), with tokens of the `agent` role. Register, claim by long poll,
//! heartbeat, log chunks, file uploads, completion; every write about a try
//! carries its lease epoch and a stale one is a 409. The handlers convert
//! between the wire types and the engine's services in `remote.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use sluice_core::ids::{AgentId, TryId};
use sluice_engine::remote::{
    AgentHeartbeat, AgentRegistration, HeldLease, MAX_CLAIM_WAIT, RemoteCommand, RemoteEnd,
    RemoteEnding, RemoteTry,
};
use sluice_engine::sluice_store::{DataRef, LogChunk, LogLine, NewArtifact};
use sluice_proto::{
    AgentCommand, AgentList, ClaimTryRequest, ClaimTryResponse, ClaimedTry, CompleteTryRequest,
    CompletedTry, ErrorBody, HeartbeatRequest, HeartbeatResponse, LogChunkRequest, ProjectVersion,
    RegisterAgentRequest, RegisteredAgent, UploadFileQuery, UploadedFile,
};

use crate::AppState;
use crate::error::{ApiError, ApiResult, Code};
use crate::extract::{ApiJson, QueryParams, check_id};

/// The largest file an agent may upload in one request.
pub const MAX_UPLOAD_BYTES: usize = 1024 * 1024 * 1024;

/// The files of a project version, for an agent to check it out.
#[utoipa::path(get, path = "/api/agent/projects/{version}", tag = "agent",
    params(("version" = String, Path, description = "A claimed try's `project_version`")),
    responses((status = 200, body = ProjectVersion), (status = 404, body = ErrorBody)))]
pub async fn agent_project_version(
    State(state): State<AppState>,
    Path(version): Path<String>,
) -> ApiResult<Json<ProjectVersion>> {
    Ok(Json(
        crate::routes::pipelines::project_files(&state, &version).await?,
    ))
}

/// One file of a project version, by its SHA-256, checked on the way out.
#[utoipa::path(get, path = "/api/agent/projects/{version}/files/{sha256}", tag = "agent",
    params(
        ("version" = String, Path, description = "The project version"),
        ("sha256" = String, Path, description = "The file's SHA-256")),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, description = "The version has no such file", body = ErrorBody)))]
pub async fn agent_project_file(
    State(state): State<AppState>,
    Path((version, sha256)): Path<(String, String)>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    crate::routes::pipelines::check_digest("project version", &version)?;
    crate::routes::pipelines::check_digest("file digest", &sha256)?;
    let bytes = state.engine.project_file_content(&version, &sha256).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        bytes,
    )
        .into_response())
}

fn agent_id(id: &str) -> ApiResult<AgentId> {
    check_id("agent id", id)?;
    Ok(AgentId(id.to_owned()))
}

fn try_id(id: &str) -> ApiResult<TryId> {
    check_id("try id", id)?;
    Ok(TryId(id.to_owned()))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Registers a remote agent; later requests carry the id it gets.
#[utoipa::path(post, path = "/api/agent/register", operation_id = "agent_register", tag = "agent",
    request_body = RegisterAgentRequest,
    responses((status = 200, body = RegisteredAgent), (status = 422, body = ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterAgentRequest>,
) -> ApiResult<Json<RegisteredAgent>> {
    let id = state
        .engine
        .register_agent(AgentRegistration {
            name: body.name,
            labels: body.labels,
            version: body.version,
            host: body.host,
            pid: body.pid,
        })
        .await?;
    Ok(Json(RegisteredAgent {
        agent_id: id.0,
        lease_ttl_ms: millis(state.engine.config().lease_ttl),
    }))
}

/// Claims a try whose required labels the agent offers. The server holds
/// the request until one is claimable or `wait_ms` (at most 25 s) passed;
/// then the answer's `try` is `null`.
#[utoipa::path(post, path = "/api/agent/claim", operation_id = "agent_claim", tag = "agent",
    request_body = ClaimTryRequest,
    responses(
        (status = 200, body = ClaimTryResponse),
        (status = 404, description = "The agent is not registered", body = ErrorBody)))]
pub async fn claim(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ClaimTryRequest>,
) -> ApiResult<Json<ClaimTryResponse>> {
    let agent = agent_id(&body.agent_id)?;
    let wait = body
        .wait_ms
        .map_or(MAX_CLAIM_WAIT, Duration::from_millis)
        .min(MAX_CLAIM_WAIT);
    let claimed = state
        .engine
        .claim_remote(&agent, wait, &state.shutdown)
        .await?;
    Ok(Json(ClaimTryResponse {
        claimed: claimed.map(claimed_try),
    }))
}

fn claimed_try(remote: RemoteTry) -> ClaimedTry {
    let RemoteTry {
        claim,
        command,
        variables,
        secrets,
        inputs,
        env,
        artifact_globs,
        timeout,
        kill_grace,
        lease_ttl,
    } = remote;
    ClaimedTry {
        try_id: claim.attempt_try.id.0,
        try_number: claim.attempt_try.try_number,
        block_run_id: claim.block_run.id.0,
        run_id: claim.run.id.0,
        pipeline: claim.run.pipeline,
        block: claim.block_run.block,
        project_version: claim.run.project_version,
        attempt: claim.block_run.attempt,
        idempotency_key: claim.block_run.idempotency_key,
        epoch: claim.attempt_try.lease_epoch,
        lease_expires_at: claim.attempt_try.lease_expires_at,
        lease_ttl_ms: millis(lease_ttl),
        command: match command {
            RemoteCommand::Shell { script } => AgentCommand::Shell { script },
            RemoteCommand::Script { path } => AgentCommand::Script { path },
        },
        variables,
        secrets,
        inputs,
        env,
        artifact_globs,
        timeout_ms: timeout.map(millis),
        kill_grace_ms: millis(kill_grace),
    }
}

/// Records that the agent is alive and renews the leases of its tries; the
/// answer says which tries to stop.
#[utoipa::path(post, path = "/api/agent/heartbeat", operation_id = "agent_heartbeat", tag = "agent",
    request_body = HeartbeatRequest,
    responses(
        (status = 200, body = HeartbeatResponse),
        (status = 404, description = "The agent is not registered", body = ErrorBody)))]
pub async fn heartbeat(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<HeartbeatRequest>,
) -> ApiResult<Json<HeartbeatResponse>> {
    let agent = agent_id(&body.agent_id)?;
    let leases = body
        .tries
        .into_iter()
        .map(|held| {
            Ok(HeldLease {
                try_id: try_id(&held.try_id)?,
                epoch: held.epoch,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let report = state
        .engine
        .heartbeat_agent(&AgentHeartbeat {
            agent,
            leases,
            draining: body.draining,
        })
        .await?;
    Ok(Json(HeartbeatResponse {
        cancel: report.cancel.into_iter().map(|id| id.0).collect(),
        lost: report.lost.into_iter().map(|id| id.0).collect(),
        lease_expires_at: report.expires_at,
    }))
}

/// Stores one numbered chunk of a try's log; sending it again changes
/// nothing.
#[utoipa::path(post, path = "/api/agent/tries/{id}/logs", operation_id = "agent_log_chunk", tag = "agent",
    params(("id" = String, Path, description = "The try's id")),
    request_body = LogChunkRequest,
    responses(
        (status = 204, description = "Stored"),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The lease epoch is stale", body = ErrorBody)))]
pub async fn logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<LogChunkRequest>,
) -> ApiResult<axum::http::StatusCode> {
    let chunk = LogChunk {
        try_id: try_id(&id)?,
        seq: body.seq,
        lines: body
            .lines
            .into_iter()
            .map(|line| LogLine {
                at: line.at,
                stream: line.stream,
                text: line.text,
            })
            .collect(),
    };
    state.engine.append_agent_log(chunk, body.epoch).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Stores a file of a running try (its data output or an artifact); the
/// body is the file. A body whose SHA-256 is not `sha256` fails the try.
#[utoipa::path(put, path = "/api/agent/tries/{id}/files", operation_id = "agent_upload_file", tag = "agent",
    params(("id" = String, Path, description = "The try's id"), UploadFileQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 200, body = UploadedFile),
        (status = 409, description = "The lease epoch is stale", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "The SHA-256 does not match; the try failed", body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<UploadedFile>> {
    let try_id = try_id(&id)?;
    let mut params = QueryParams::parse(raw.as_deref())?;
    let epoch = params
        .parsed::<i64>("epoch", "a lease epoch")?
        .ok_or_else(|| ApiError::bad_request("`epoch` is missing"))?;
    let sha256 = params
        .one("sha256")?
        .ok_or_else(|| ApiError::bad_request("`sha256` is missing"))?;
    params.finish()?;
    let query = UploadFileQuery { epoch, sha256 };
    let content = body.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                Code::PayloadTooLarge,
                format!("the file is larger than {MAX_UPLOAD_BYTES} bytes"),
            )
        } else {
            ApiError::bad_request(format!("cannot read the file: {rejection}"))
        }
    })?;
    let blob = state
        .engine
        .upload_file(&try_id, query.epoch, &query.sha256, content.to_vec())
        .await?;
    Ok(Json(UploadedFile {
        sha256: blob.sha256,
        size: blob.size,
    }))
}

/// Reports how a try ended; the server decides whether its block run is
/// retried or finished.
#[utoipa::path(post, path = "/api/agent/tries/{id}/complete", operation_id = "agent_complete_try", tag = "agent",
    params(("id" = String, Path, description = "The try's id")),
    request_body = CompleteTryRequest,
    responses(
        (status = 200, body = CompletedTry),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The lease epoch is stale", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn complete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CompleteTryRequest>,
) -> ApiResult<Json<CompletedTry>> {
    let try_id = try_id(&id)?;
    let agent = agent_id(&body.agent_id)?;
    let end = match body.result.as_str() {
        "completed" => RemoteEnd::Completed,
        "failed" => RemoteEnd::Failed,
        "timed_out" => RemoteEnd::TimedOut,
        "cancelled" => RemoteEnd::Cancelled,
        "interrupted" => RemoteEnd::Interrupted,
        other => {
            return Err(ApiError::invalid(format!("`{other}` is not a try result"))
                .with_hint("send completed, failed, timed_out, cancelled or interrupted"));
        }
    };
    let ending = RemoteEnding {
        epoch: body.epoch,
        end,
        exit_code: body.exit_code,
        error: body.error,
        outputs: body.outputs.into_iter().collect::<BTreeMap<_, _>>(),
        data: body.data.map(|data| DataRef {
            sha256: data.sha256,
            format: data.format,
            size: data.size,
        }),
        artifacts: body
            .artifacts
            .into_iter()
            .map(|artifact| NewArtifact {
                name: artifact.name,
                size: artifact.size,
                sha256: artifact.sha256,
            })
            .collect(),
    };
    let status = state
        .engine
        .complete_agent_try(&agent, &try_id, ending)
        .await?;
    Ok(Json(CompletedTry {
        block_run_status: status.to_string(),
    }))
}

/// Remote agents by name: labels, status (`online`, `busy`, `draining`,
/// `offline`), running tries, last heartbeat and version.
#[utoipa::path(get, path = "/api/agents", operation_id = "list_agents", tag = "agent",
    responses((status = 200, body = AgentList)))]
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<AgentList>> {
    let agents = state.engine.list_agents().await?;
    Ok(Json(AgentList {
        agents: agents.into_iter().map(crate::convert::agent).collect(),
    }))
}
