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

/// The imports of other actors in `source`, the file `file` of `actor`:
/// any path through `crate::actors`, `actors` or enough `super`s to reach
/// the actors' module that then names another actor, also inside a
/// `{…}` group and across line breaks.
fn foreign_imports(actor: &str, file: &Path, source: &str) -> Vec<String> {
    // `src/actors/<actor>/mod.rs` is `actors::<actor>`: one `super` reaches
    // `actors`; every folder or file below that adds one.
    let below = file
        .components()
        .skip(3)
        .filter(|c| c.as_os_str() != "mod.rs")
        .count();
    let supers = vec!["super"; below + 1].join("::");
    let code = tight(source);
    let mut found = Vec::new();
    for prefix in ["crate::actors".to_string(), "actors".to_string(), supers] {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(&format!("{prefix}::")) {
            let before = rest[..at].chars().last();
            rest = &rest[at + prefix.len() + 2..];
            // `xactors::` or `crate::actors` seen as `actors` is not this.
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            if prefix == "actors"
                && code[..code.len() - rest.len() - prefix.len() - 2].ends_with("crate::")
            {
                continue;
            }
            let named = named_first(rest);
            for other in ACTORS.iter().filter(|other| **other != actor) {
                if named.iter().any(|name| name == other) {
                    found.push(format!("{prefix}::{other}"));
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// `source` with its whitespace made single spaces, and none left next to
/// `:`, `{`, `}` or `,`, so a path reads the same however it is wrapped.
fn tight(source: &str) -> String {
    let spaced = source.split_whitespace().collect::<Vec<_>>().join(" ");
    let chars: Vec<char> = spaced.chars().collect();
    let joins = |c: Option<&char>| c.is_some_and(|c| ":{},".contains(*c));
    chars
        .iter()
        .enumerate()
        .filter(|(i, c)| {
            **c != ' ' || !(joins(chars.get(i.wrapping_sub(1))) || joins(chars.get(i + 1)))
        })
        .map(|(_, c)| *c)
        .collect()
}

/// The first path segments named at the start of `rest`: one identifier,
/// or each item of a `{…}` group.
fn named_first(rest: &str) -> Vec<String> {
    let ident = |text: &str| -> String {
        text.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident(rest)];
    };
    let mut depth = 1;
    let mut names = Vec::new();
    let mut item_start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 1 => break,
            '}' => depth -= 1,
            ',' if depth == 1 => item_start = true,
            _ if item_start && depth == 1 => {
                names.push(ident(&group[i..]));
                item_start = false;
            }
            _ => {}
        }
    }
    names
}

#[test]
fn no_actor_imports_another_actor() {
    let mut offences = Vec::new();
    for actor in ACTORS {
        for file in rust_files(&Path::new(ROOT).join("src/actors").join(actor)) {
            let source = std::fs::read_to_string(Path::new(ROOT).join(&file)).unwrap();
            for import in foreign_imports(actor, &file, &source) {
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
    let file = Path::new("src/actors/ingest/http/jobs.rs");
    let mod_rs = Path::new("src/actors/ingest/mod.rs");
    let imports_auth = |path: &Path, source: &str| foreign_imports("ingest", path, source);
    assert_eq!(
        imports_auth(file, "use crate::actors::auth::keys;\n"),
        ["crate::actors::auth"]
    );
    assert!(foreign_imports("auth", file, "use crate::actors::auth::keys;").is_empty());
    assert!(!imports_auth(file, "use crate::actors::{\n    Worker,\n    auth,\n};").is_empty());
    assert!(!imports_auth(file, "use crate::actors::{Worker, auth::keys};").is_empty());
    assert!(!imports_auth(mod_rs, "use super::auth::Keys;").is_empty());
    assert!(!imports_auth(file, "use super::super::super::auth;").is_empty());
    assert!(!imports_auth(file, "let k = actors::auth::Keys::new();").is_empty());
    // What an actor may use: its own modules and the actors' shared frame.
    assert!(imports_auth(file, "use super::super::error::ApiError;").is_empty());
    assert!(imports_auth(mod_rs, "use super::{Worker, micro};").is_empty());
    assert!(imports_auth(file, "use crate::actors::{Worker, micro};").is_empty());
    assert!(imports_auth(file, "use crate::wire::auth::AuthClient;").is_empty());
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
