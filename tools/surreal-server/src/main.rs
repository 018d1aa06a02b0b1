//! The SurrealDB server, as the official `surreal` binary runs it, built
//! from the `surrealdb-server` crate of the same version as mediajet's SDK.
//! mediajet's tests start it (`surreal-server start …`) to exercise the
//! remote `ws://` SurrealDB mode against a real server.

fn main() -> std::process::ExitCode {
    surrealdb_server::init(surrealdb_server::core::CommunityComposer())
}
