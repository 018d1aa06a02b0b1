//! The tus requests tests send by hand, where the server's answers to a
//! misbehaving (or exactly placed) request are the point.

use bytes::Bytes;

use super::Api;

/// The headers of a tus request besides the method's own.
pub fn tus_request(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    http.request(method, url)
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
}

/// Asks to create an upload of `length` bytes; returns the answer.
pub async fn tus_try_create(
    api: &Api,
    token: &str,
    length: u64,
    metadata: &str,
) -> reqwest::Response {
    tus_request(
        &api.http,
        reqwest::Method::POST,
        &api.url("/v1/uploads"),
        token,
    )
    .header("Upload-Length", length)
    .header("Upload-Metadata", metadata)
    .send()
    .await
    .unwrap()
}

/// Creates an upload of `length` bytes; returns its URL.
pub async fn tus_create(api: &Api, token: &str, length: u64, metadata: &str) -> String {
    let created = tus_try_create(api, token, length, metadata).await;
    assert_eq!(created.status(), 201, "{:?}", created.text().await);
    assert_eq!(created.headers()["tus-resumable"], "1.0.0");
    api.url(created.headers()["location"].to_str().unwrap())
}

pub async fn tus_patch(
    api: &Api,
    token: &str,
    url: &str,
    offset: u64,
    part: Bytes,
) -> reqwest::Response {
    tus_request(&api.http, reqwest::Method::PATCH, url, token)
        .header("Upload-Offset", offset)
        .header("Content-Type", "application/offset+octet-stream")
        .body(part)
        .send()
        .await
        .unwrap()
}

pub async fn tus_head(api: &Api, token: &str, url: &str) -> reqwest::Response {
    tus_request(&api.http, reqwest::Method::HEAD, url, token)
        .send()
        .await
        .unwrap()
}

pub fn header_number(response: &reqwest::Response, name: &str) -> u64 {
    response.headers()[name].to_str().unwrap().parse().unwrap()
}
