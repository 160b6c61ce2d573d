//! The HTTP functions' Lambda glue: API Gateway proxy events in, proxy responses out. Shared by every
//! lambda_http function so that each `main` only wires.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response, service_fn};

use super::{ApiRequest, ApiResponse};

/// A set of REST operations served by one function.
#[async_trait]
pub trait Operations: Send + Sync {
    async fn handle(&self, request: &ApiRequest) -> ApiResponse;
}

/// Turns API Gateway's request into the API's. The route is API Gateway's resource template, so a
/// function serves exactly the operations openapi.yaml routes to it.
pub fn api_request(request: Request) -> ApiRequest {
    let resource = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.resource_path.clone(),
        _ => None,
    }
    .unwrap_or_else(|| request.uri().path().to_string());
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
    ApiRequest { method: parts.method, resource, path_parameters, query, headers: parts.headers, body }
}

/// Turns the API's response into API Gateway's.
pub fn lambda_response(response: ApiResponse) -> Response<Body> {
    response.map(|body| if body.is_empty() { Body::Empty } else { Body::Text(body) })
}

/// Runs the Lambda event loop for `operations` until the runtime stops it.
pub async fn serve(operations: Arc<dyn Operations>) -> Result<(), lambda_http::Error> {
    lambda_http::run(service_fn(move |request: Request| {
        let operations = operations.clone();
        async move {
            let response = operations.handle(&api_request(request)).await;
            Ok::<_, std::convert::Infallible>(lambda_response(response))
        }
    }))
    .await
}
