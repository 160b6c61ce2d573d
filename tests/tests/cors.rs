//! CORS for the portal: `make test` starts the stack with `PORTCULLIS_ALLOWED_ORIGINS=https://portal.test`.
//! A preflight from that origin, routed by openapi.yaml's `options` operations to the function that owns
//! the path, answers 204 without a token; the functions' answers, errors included, name the origin back;
//! any other origin gets no CORS headers.

use portcullis_e2e::Harness;
use reqwest::Method;
use reqwest::header::HeaderMap;

const PORTAL: &str = "https://portal.test";

async fn from_origin(h: &Harness, method: Method, path: &str, origin: &str, token: Option<&str>) -> (u16, HeaderMap) {
    let mut request = h
        .http
        .request(method, format!("{}{path}", h.stack.api_url))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization, content-type");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the API answers");
    (response.status().as_u16(), response.headers().clone())
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

#[tokio::test]
async fn a_preflight_from_the_portal_is_answered_without_a_token() {
    let h = Harness::new().await;
    let (status, headers) = from_origin(&h, Method::OPTIONS, "/apps", PORTAL, None).await;
    assert_eq!(status, 204);
    assert_eq!(header(&headers, "access-control-allow-origin"), PORTAL);
    assert_eq!(header(&headers, "access-control-allow-methods"), "GET, POST");
    assert_eq!(header(&headers, "access-control-allow-headers"), "Authorization, Content-Type, Idempotency-Key");
    assert!(header(&headers, "access-control-max-age").parse::<u32>().unwrap() > 0);
    assert!(header(&headers, "vary").contains("Origin"));
    // Every function serves its own paths' preflights.
    for (path, methods) in
        [("/apps/x/users/u", "DELETE"), ("/tenants/t", "GET, PUT, DELETE"), ("/apps/x/events", "GET")]
    {
        let (status, headers) = from_origin(&h, Method::OPTIONS, path, PORTAL, None).await;
        assert_eq!((status, header(&headers, "access-control-allow-methods")), (204, methods), "{path}");
    }
}

#[tokio::test]
async fn the_functions_errors_carry_the_portals_origin() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    let (status, headers) = from_origin(&h, Method::GET, "/apps", PORTAL, None).await;
    assert_eq!(status, 401);
    assert_eq!(header(&headers, "access-control-allow-origin"), PORTAL);
    assert!(header(&headers, "access-control-expose-headers").contains("WWW-Authenticate"));
    let (status, headers) = from_origin(&h, Method::GET, "/apps/no-such-app", PORTAL, Some(&tenant.admin)).await;
    assert_eq!(status, 404);
    assert_eq!(header(&headers, "access-control-allow-origin"), PORTAL);
    assert!(header(&headers, "access-control-expose-headers").contains("Location"));
    assert!(header(&headers, "vary").contains("Origin"));
}

#[tokio::test]
async fn another_origin_gets_no_cors_headers() {
    let h = Harness::new().await;
    let tenant = h.tenant().await;
    for (method, path, token) in [
        (Method::OPTIONS, "/apps", None),
        (Method::GET, "/apps", None),
        (Method::GET, "/apps/no-such-app", Some(tenant.admin.as_str())),
    ] {
        let (status, headers) = from_origin(&h, method.clone(), path, "https://elsewhere.test", token).await;
        assert!(matches!(status, 204 | 401 | 404), "{method} {path}: {status}");
        for name in ["access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers"] {
            assert!(headers.get(name).is_none(), "{method} {path}: {name}");
        }
    }
}
