//! The glue between Lambda and the library, for the function crates (feature `lambda`): API Gateway
//! proxy events in and out of `api::Operations`, and Step Functions task events in and out of
//! `workflow::Provisioner`. The operations themselves know nothing of Lambda.

use std::collections::HashMap;
use std::sync::Arc;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

use crate::adapters::{DynamoStore, JwksTokenVerifier};
use crate::api::{AllowedOrigins, ApiRequest, ApiResponse, Cors, Operations, PageSeal};
use crate::workflow::{
    AccessExpiry, CheckDrift, DriftCheck, EndExpiredAccess, FailureName, InvitationReminder, Provisioner,
    ResendInvitations, RunEnded, StepFailure, StepInput, StepOutput,
};

/// Turns API Gateway's request into the API's. The route is API Gateway's resource template, so a
/// function serves exactly the operations openapi.yaml routes to it.
pub fn api_request(request: Request) -> ApiRequest {
    let (resource, request_id) = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(ctx)) => (ctx.resource_path.clone(), ctx.request_id.clone()),
        _ => (None, None),
    };
    let resource = resource.unwrap_or_else(|| request.uri().path().to_string());
    let path_parameters: HashMap<String, String> =
        request.path_parameters().iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let query: HashMap<String, String> =
        request.query_string_parameters().iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let (parts, body) = request.into_parts();
    let body = match body {
        Body::Empty => String::new(),
        Body::Text(text) => text,
        Body::Binary(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        _ => String::new(),
    };
    ApiRequest {
        request_id: request_id.unwrap_or_default(),
        method: parts.method,
        resource,
        path_parameters,
        query,
        headers: parts.headers,
        body,
        verified: None,
    }
}

/// Turns the API's response into API Gateway's.
pub fn lambda_response(response: ApiResponse) -> Response<Body> {
    response.map(|body| if body.is_empty() { Body::Empty } else { Body::Text(body) })
}

/// Does during init, at once, what an HTTP function's first request would otherwise do one after the
/// other: read the token issuer's keys and open the connection to the table (on AWS, two TLS
/// handshakes). A failure is only logged: the first request then does it itself.
pub async fn warm_up(verifier: &JwksTokenVerifier, store: &DynamoStore) {
    let (keys, table) = tokio::join!(verifier.warm_up(), store.warm_up());
    for (what, outcome) in [("the token issuer's keys", keys), ("the connection to the table", table)] {
        if let Err(error) = outcome {
            tracing::warn!(%error, "warming up {what} failed; the first request will");
        }
    }
}

/// Runs the Lambda event loop of an HTTP function until the runtime stops it, with CORS for the origins
/// in `PORTCULLIS_ALLOWED_ORIGINS` around its operations. A missing page token key stops the cold start.
pub async fn serve_api(operations: Arc<dyn Operations>) -> Result<(), lambda_http::Error> {
    PageSeal::install()?;
    let operations: Arc<dyn Operations> = Arc::new(Cors { operations, origins: AllowedOrigins::from_env()? });
    lambda_http::run(lambda_http::service_fn(move |request: Request| {
        let operations = operations.clone();
        async move {
            let response = operations.handle(&api_request(request)).await;
            Ok::<_, std::convert::Infallible>(lambda_response(response))
        }
    }))
    .await
}

/// The Lambda error Step Functions sees: its `errorType` is the stable name the ASL matches; its
/// `errorMessage` becomes a FAILED app's `error.message`, so it carries the message, not the chain.
impl From<StepFailure> for Diagnostic {
    fn from(failure: StepFailure) -> Self {
        Diagnostic { error_type: failure.name.as_str().into(), error_message: failure.message }
    }
}

/// The `detail-type` of EventBridge's notice that a Step Functions execution changed status.
const RUN_STATUS_CHANGE: &str = "Step Functions Execution Status Change";

/// Runs what the provisioner is invoked for: a state machine's task, or EventBridge's notice that a run
/// ended unsuccessfully (the rule in infra/template.yaml sends only FAILED, TIMED_OUT and ABORTED).
pub async fn run_event(provisioner: &Provisioner, event: Value) -> Result<StepOutput, Diagnostic> {
    if event.get("detail-type").and_then(Value::as_str) != Some(RUN_STATUS_CHANGE) {
        return run_step(provisioner, event).await;
    }
    let ended: RunEnded = serde_json::from_value(event["detail"].clone()).map_err(|e| {
        let failure =
            StepFailure::new(FailureName::InvalidStepRequest, format!("the run status notice does not read: {e}"));
        tracing::error!(error = %failure, "notice refused");
        failure
    })?;
    Ok(provisioner.run_ended(ended).await?)
}

/// Runs one task: the event must be a step input the state machines send.
pub async fn run_step(provisioner: &Provisioner, event: Value) -> Result<StepOutput, Diagnostic> {
    let input: StepInput = serde_json::from_value(event).map_err(|e| {
        let failure =
            StepFailure::new(FailureName::InvalidStepRequest, format!("the task input is not a step input: {e}"));
        tracing::error!(error = %failure, "task refused");
        failure
    })?;
    Ok(provisioner.run(input).await?)
}

/// What the provisioner runs besides the state machines' tasks: the template's schedules.
pub struct ScheduledJobs {
    pub drift: DriftCheck,
    pub reminder: InvitationReminder,
    pub access_expiry: AccessExpiry,
}

/// Reads a schedule's event, `{"<job>": {…}}`.
fn job_request<T: serde::de::DeserializeOwned>(job: &str, request: &Value) -> Result<T, StepFailure> {
    serde_json::from_value(request.clone())
        .map_err(|e| StepFailure::new(FailureName::InvalidStepRequest, format!("the {job} event does not read: {e}")))
}

/// A schedule's event (`{"checkDrift": …}`, `{"resendInvitations": …}`, `{"endExpiredAccess": …}`) runs
/// its job; anything else goes to `run_event`.
pub async fn run_invocation(
    provisioner: &Provisioner,
    jobs: &ScheduledJobs,
    event: Value,
) -> Result<Value, Diagnostic> {
    let answer = if let Some(request) = event.get("checkDrift") {
        let request: CheckDrift = job_request("checkDrift", request)?;
        serde_json::to_value(jobs.drift.run(request).await.map_err(StepFailure::from)?)
    } else if let Some(request) = event.get("resendInvitations") {
        let request: ResendInvitations = job_request("resendInvitations", request)?;
        serde_json::to_value(jobs.reminder.run(request).await.map_err(StepFailure::from)?)
    } else if let Some(request) = event.get("endExpiredAccess") {
        let request: EndExpiredAccess = job_request("endExpiredAccess", request)?;
        serde_json::to_value(jobs.access_expiry.run(request).await.map_err(StepFailure::from)?)
    } else {
        serde_json::to_value(run_event(provisioner, event).await?)
    };
    answer.map_err(|e| StepFailure::new(FailureName::Internal, format!("the answer does not serialize: {e}")).into())
}

/// Runs the Lambda event loop of the provisioner until the runtime stops it.
pub async fn serve_steps(provisioner: Arc<Provisioner>, jobs: Arc<ScheduledJobs>) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(lambda_runtime::service_fn(move |event: LambdaEvent<Value>| {
        let (provisioner, jobs) = (provisioner.clone(), jobs.clone());
        async move { run_invocation(&provisioner, &jobs, event.payload).await }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_reaches_step_functions_under_its_stable_name() {
        let diagnostic = Diagnostic::from(StepFailure::new(FailureName::PriorityInUse, "priority 3 is taken"));
        assert_eq!(diagnostic.error_type, "PriorityInUse");
        assert_eq!(diagnostic.error_message, "priority 3 is taken");
    }

    #[test]
    fn the_route_and_request_id_come_from_api_gateway() {
        let event = serde_json::json!({
            "resource": "/apps/{id}", "path": "/apps/x", "httpMethod": "GET",
            "headers": {}, "multiValueHeaders": {}, "pathParameters": {"id": "x"},
            "requestContext": {"resourcePath": "/apps/{id}", "httpMethod": "GET", "requestId": "req-1",
                               "stage": "v1", "identity": {}},
            "body": null, "isBase64Encoded": false
        });
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        let api = api_request(request);
        assert_eq!((api.resource.as_str(), api.request_id.as_str(), api.path("id")), ("/apps/{id}", "req-1", "x"));
    }
}
