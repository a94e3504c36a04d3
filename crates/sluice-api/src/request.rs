//! Per-request plumbing: a request id on every response (`X-Request-Id`),
//! internal errors logged under it and answered without their details, and
//! the JSON answers for unknown routes and methods.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sluice_proto::ErrorBody;

use crate::error::{ApiError, Code, INTERNAL_MESSAGE, InternalDetail};

/// The id of one request, also sent as `X-Request-Id`.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Gives the request an id; logs an internal error's details under it and
/// sends only the id.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = RequestId(uuid::Uuid::now_v7().to_string());
    request.extensions_mut().insert(id.clone());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    if let Some(InternalDetail(detail)) = response.extensions_mut().remove::<InternalDetail>() {
        tracing::error!(request_id = %id.0, %method, %path, "internal error: {detail}");
        let body = ErrorBody {
            error: sluice_proto::ErrorDetail {
                code: Code::Internal.as_str().to_owned(),
                message: format!("{INTERNAL_MESSAGE} (request id {})", id.0),
                hint: Some("the server log has the details under this request id".to_owned()),
            },
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let headers = response.headers().clone();
        response = Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Body::from(bytes))
            .unwrap_or_default();
        *response.headers_mut() = headers;
        response
            .headers_mut()
            .remove(axum::http::header::CONTENT_LENGTH);
    }
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// The prefix of the message for a path no route matches.
pub const NO_ROUTE: &str = "no route matches";

/// The answer for a path no route matches.
pub async fn no_route(request: Request) -> Response {
    ApiError::not_found(format!(
        "{NO_ROUTE} {} {}",
        request.method(),
        request.uri().path()
    ))
    .with_hint("the routes are listed in /api/openapi.json")
    .into_response()
}

/// The answer for a known path with a method it does not take.
pub async fn wrong_method(request: Request) -> Response {
    ApiError::new(
        Code::MethodNotAllowed,
        format!(
            "{} does not take {}",
            request.uri().path(),
            request.method()
        ),
    )
    .into_response()
}
