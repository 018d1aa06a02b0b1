//! The OpenAPI document at `/openapi.json`: generated from the handlers,
//! committed as `docs/openapi.json` (so API changes show in review), and
//! checked against the live API in both directions.

use crate::common;

use std::path::Path;

use serde_json::{Value, json};

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");

async fn served_document(app: &common::TestApp) -> Value {
    let response = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_served_document_is_openapi_3_1_and_the_committed_copy_is_current() {
    let app = common::spawn_app().await;
    let served = served_document(&app).await;
    assert_eq!(served["openapi"], "3.1.0");
    let generated = serde_json::to_value(mediajet::actors::ingest::http::openapi()).unwrap();
    assert_eq!(served, generated);

    let pretty = serde_json::to_string_pretty(&served).unwrap() + "\n";
    if std::env::var_os("MEDIAJET_UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(Path::new(COMMITTED)).unwrap_or_default();
    assert!(
        committed == pretty,
        "docs/openapi.json is not what the code generates; run \
         `MEDIAJET_UPDATE_OPENAPI=1 cargo test --test it openapi` and commit it"
    );
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = common::spawn_app().await;
    let document = served_document(&app).await;
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        let url = app.url(&path.replace("{id}", "0190f5a8-0000-7000-8000-000000000000"));
        for method in item.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app.http.request(method.clone(), &url).send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let unrouted =
                status == 405 || (status == 404 && body["error"]["message"] == "no such route");
            assert!(
                !unrouted,
                "{method} {path} is documented but not routed: {status} {body}"
            );
            operations += 1;
        }
    }
    assert_eq!(operations, 55);
}

#[tokio::test]
async fn real_answers_are_documented_and_match_their_schemas() {
    // A spent refresh token is a replay at once, not a retry.
    let app =
        common::spawn_app_with(|config| config.auth.refresh_grace = std::time::Duration::ZERO)
            .await;
    let document = served_document(&app).await;
    let check = |method: &str, path: &str, status: u16, body: &Value| {
        let operation = &document["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        let response = &operation["responses"][status.to_string()];
        assert!(
            response.is_object(),
            "{method} {path} answered {status}, which is not documented"
        );
        if let Some(schema) = response["content"]["application/json"].get("schema")
            && let Err(problem) = conforms(&document, schema, body)
        {
            panic!("{method} {path} {status}: {problem}\n{body:#}");
        }
    };

    let login = app
        .http
        .post(app.url("/v1/login"))
        .basic_auth(common::ADMIN_EMAIL, Some(common::ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let tokens: Value = login.json().await.unwrap();
    check("post", "/v1/login", 200, &tokens);
    let refreshed = app.refresh(&tokens["refresh_token"]).await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    check("post", "/v1/tokens/refresh", 200, &refreshed);
    let spent = app.refresh(&tokens["refresh_token"]).await;
    assert_eq!(spent.status(), 401);
    check(
        "post",
        "/v1/tokens/refresh",
        401,
        &spent.json().await.unwrap(),
    );
    let logout = app.http.post(app.url("/v1/logout")).send().await.unwrap();
    assert_eq!(logout.status(), 401);
    check("post", "/v1/logout", 401, &logout.json().await.unwrap());
    let wrong = app
        .http
        .post(app.url("/v1/login"))
        .basic_auth(common::ADMIN_EMAIL, Some("wrong password"))
        .send()
        .await
        .unwrap();
    check("post", "/v1/login", 401, &wrong.json().await.unwrap());

    let admin = app.admin_token().await;
    let created = app
        .http
        .post(app.url("/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({"email": "ann@example.com", "password": "a long password"}))
        .send()
        .await
        .unwrap();
    check("post", "/v1/users", 201, &created.json().await.unwrap());
    let token = app.login("ann@example.com", "a long password").await;

    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    let submitted = app.upload(&token, &video, Some("opus")).await;
    let status = submitted.status().as_u16();
    let job: Value = submitted.json().await.unwrap();
    check("post", "/v1/jobs", status, &job);
    let id = job["id"].as_str().unwrap().to_string();
    let bad = app
        .upload_with(&token, &video, &[("format", "flac"), ("bitrate", "128")])
        .await;
    check(
        "post",
        "/v1/jobs",
        bad.status().as_u16(),
        &bad.json().await.unwrap(),
    );

    let finished = app.wait_until_finished(&token, &id).await;
    check("get", "/v1/jobs/{id}", 200, &finished);
    let mut events = app.events(&token, &id).await;
    let event = events
        .next(std::time::Duration::from_secs(10))
        .await
        .unwrap();
    if let Err(problem) = conforms(
        &document,
        &json!({"$ref": "#/components/schemas/Job"}),
        &event.data,
    ) {
        panic!("an event's data is not a Job: {problem}");
    }
    let list = app.get(&token, "/v1/jobs?limit=1").await;
    check("get", "/v1/jobs", 200, &list.json().await.unwrap());
    let bad_query = app.get(&token, "/v1/jobs?limit=many").await;
    check(
        "get",
        "/v1/jobs",
        bad_query.status().as_u16(),
        &bad_query.json().await.unwrap(),
    );

    let output = format!("/v1/jobs/{id}/output");
    let ranged = app
        .http
        .get(app.url(&output))
        .bearer_auth(&token)
        .header("Range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    let documented =
        &document["paths"]["/v1/jobs/{id}/output"]["get"]["responses"]["206"]["content"];
    let content_type = ranged.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        documented.get(&content_type).is_some(),
        "{content_type} is not documented"
    );
    let past_end = app
        .http
        .get(app.url(&output))
        .bearer_auth(&token)
        .header("Range", "bytes=99999999-")
        .send()
        .await
        .unwrap();
    check(
        "get",
        "/v1/jobs/{id}/output",
        416,
        &past_end.json().await.unwrap(),
    );

    let stranger = app.new_user("bob@example.com").await;
    let hidden = app.job(&stranger, &id).await;
    check("get", "/v1/jobs/{id}", 404, &hidden.json().await.unwrap());
    let anonymous = app.http.get(app.url("/v1/jobs")).send().await.unwrap();
    check("get", "/v1/jobs", 401, &anonymous.json().await.unwrap());
    let deleted = app.delete(&token, &format!("/v1/jobs/{id}")).await;
    check(
        "delete",
        "/v1/jobs/{id}",
        deleted.status().as_u16(),
        &Value::Null,
    );
}

/// Whether `value` fits `schema` (the parts of JSON Schema the document
/// uses: `$ref`, `allOf`, `oneOf`, `type`, `enum`, `properties`, `required`,
/// `items`). Properties the schema does not name are a failure too, so a
/// field added to the code but not to the document is caught.
fn conforms(document: &Value, schema: &Value, value: &Value) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return conforms(document, &document["components"]["schemas"][name], value);
    }
    if let Some(parts) = schema["allOf"].as_array() {
        // Each part checks its own properties; unknown ones are checked
        // against all of them together.
        let mut known = Vec::new();
        for part in parts {
            let part = resolve(document, part);
            for key in part["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                known.push(key.clone());
            }
            let mut own = value.clone();
            if let Some(object) = own.as_object_mut() {
                object.retain(|k, _| part["properties"].get(k).is_some());
            }
            conforms(document, &part, &own)?;
        }
        if let Some(extra) = value
            .as_object()
            .and_then(|object| object.keys().find(|k| !known.contains(k)))
        {
            return Err(format!("`{extra}` is not in the schema"));
        }
        return Ok(());
    }
    if let Some(choices) = schema["oneOf"].as_array() {
        return choices
            .iter()
            .find(|choice| conforms(document, choice, value).is_ok())
            .map(|_| ())
            .ok_or_else(|| format!("{value} fits none of {choices:?}"));
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{value} is not one of {allowed:?}"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let fits = types.is_empty()
        || types.contains(&actual)
        || (actual == "integer" && types.contains(&"number"));
    if !fits {
        return Err(format!("{value} is {actual}, not {types:?}"));
    }
    if let Value::Object(object) = value {
        for required in schema["required"].as_array().into_iter().flatten() {
            let key = required.as_str().unwrap_or_default();
            if !object.contains_key(key) {
                return Err(format!("required `{key}` is missing"));
            }
        }
        let properties = schema["properties"].as_object();
        for (key, field) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(field_schema) => conforms(document, field_schema, field)
                    .map_err(|problem| format!("`{key}`: {problem}"))?,
                None if properties.is_some() => {
                    return Err(format!("`{key}` is not in the schema"));
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for item in items {
            conforms(document, item_schema, item)?;
        }
    }
    Ok(())
}

fn resolve(document: &Value, schema: &Value) -> Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            document["components"]["schemas"][name].clone()
        }
        None => schema.clone(),
    }
}
