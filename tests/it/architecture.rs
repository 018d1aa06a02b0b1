//! The invariants ARCHITECTURE.md states about the code's structure, checked
//! on the source: actors import no other actor, the code map names every
//! module and nothing that is gone, and every HTTP route in the source is
//! in the OpenAPI document.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const ACTORS: [&str; 4] = ["auth", "ingest", "transcoder", "mailer"];

/// Every `.rs` file under `dir`, as paths relative to the crate root.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path.strip_prefix(ROOT).unwrap().to_path_buf());
            }
        }
    }
    files.sort();
    files
}

/// The imports of other actors in `source`, an actor's file.
fn foreign_imports(actor: &str, source: &str) -> Vec<String> {
    let mut found = Vec::new();
    for other in ACTORS.iter().filter(|other| **other != actor) {
        for spelling in [
            format!("crate::actors::{other}"),
            format!("actors::{{{other}"),
            format!("super::super::{other}"),
        ] {
            if source.contains(&spelling) {
                found.push(spelling);
            }
        }
    }
    found
}

#[test]
fn no_actor_imports_another_actor() {
    let mut offences = Vec::new();
    for actor in ACTORS {
        for file in rust_files(&Path::new(ROOT).join("src/actors").join(actor)) {
            let source = std::fs::read_to_string(Path::new(ROOT).join(&file)).unwrap();
            for import in foreign_imports(actor, &source) {
                offences.push(format!("{} uses {import}", file.display()));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "actors talk over NATS only; shared code goes in wire, token, storage or config:\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_import_check_catches_an_actor_importing_another() {
    let ingest_importing_auth = "use crate::actors::auth::keys;\n";
    assert_eq!(
        foreign_imports("ingest", ingest_importing_auth),
        ["crate::actors::auth"]
    );
    assert!(foreign_imports("auth", ingest_importing_auth).is_empty());
    assert!(!foreign_imports("mailer", "use crate::actors::{ingest, Worker};").is_empty());
}

/// The code map: each row's path and the rest of its text.
fn code_map() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).unwrap();
    let section = doc
        .split("## Code map")
        .nth(1)
        .expect("ARCHITECTURE.md has a code map")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    section
        .lines()
        .filter_map(|line| {
            let mut cells = line.strip_prefix("| `")?.splitn(2, '`');
            let path = cells.next()?.to_string();
            Some((path, cells.next().unwrap_or_default().to_string()))
        })
        .collect()
}

#[test]
fn every_path_in_the_code_map_exists() {
    let missing: Vec<String> = code_map()
        .into_iter()
        .map(|(path, _)| path)
        .filter(|path| !path.contains('*') && !Path::new(ROOT).join(path).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "the code map names what is gone: {missing:?}"
    );
}

#[test]
fn every_source_file_is_in_the_code_map() {
    let map = code_map();
    let unmapped: Vec<String> = rust_files(&Path::new(ROOT).join("src"))
        .into_iter()
        .filter(|file| {
            let path = file.to_string_lossy();
            let dir = format!("{}/", file.parent().unwrap().display());
            let name = file.file_name().unwrap().to_string_lossy();
            !map.iter().any(|(row, text)| {
                *row == path
                    || (*row == dir && (name == "mod.rs" || text.contains(&format!("`{name}`"))))
            })
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(
        unmapped.is_empty(),
        "ARCHITECTURE.md's code map does not say what these are: {unmapped:?}"
    );
}

/// Every path literal under `/v1/` and every route of the service mediajet
/// replaces, as it appears in the source, with parameters written `{}`.
fn routes_in_source() -> BTreeSet<String> {
    let mut routes = BTreeSet::new();
    for file in rust_files(&Path::new(ROOT).join("src")) {
        let source = std::fs::read_to_string(Path::new(ROOT).join(&file)).unwrap();
        for literal in source.split('"').skip(1).step_by(2) {
            let path = literal.split(['?', ' ', '>']).next().unwrap_or_default();
            let seed = ["/login", "/upload", "/download"].contains(&path);
            if (path.starts_with("/v1/") || seed) && !path.ends_with('/') {
                routes.insert(normalized(path));
            }
        }
    }
    routes
}

/// `path` with each `{parameter}` written `{}`.
fn normalized(path: &str) -> String {
    let mut out = String::new();
    let mut in_parameter = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_parameter = true;
                out.push_str("{}");
            }
            '}' => in_parameter = false,
            _ if !in_parameter => out.push(c),
            _ => {}
        }
    }
    out
}

#[test]
fn every_route_in_the_source_is_documented() {
    let document = serde_json::to_value(mediajet::actors::ingest::http::openapi()).unwrap();
    let documented: BTreeSet<String> = document["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(|path| normalized(path))
        .collect();
    let routes = routes_in_source();
    assert!(routes.len() >= 10, "too few routes found: {routes:?}");
    let undocumented: Vec<&String> = routes.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes in the source that the OpenAPI document lacks: {undocumented:?}"
    );
}
