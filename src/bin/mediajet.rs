//! The mediajet binary: parses the command line, sets up logging and hands
//! over to the library.

use std::process::ExitCode;

use clap::Parser;
use mediajet::config::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.command {
        Command::Up(config) => config,
        Command::Run(config) if config.shared.nats_url.is_none() => {
            eprintln!("mediajet: `run` needs --nats-url (use `up` for a local nats-server)");
            return ExitCode::FAILURE;
        }
        Command::Run(config) => config,
        Command::Login(args) => {
            return client(async {
                let path = mediajet::client::login(args).await?;
                println!("logged in; token saved in {}", path.display());
                Ok(())
            });
        }
        Command::Submit(args) => {
            return client(async { mediajet::client::submit(args).await.map(|_| ()) });
        }
    };
    mediajet::telemetry::init();
    let result = mediajet::app::run(config, shutdown_signal(), |ready| {
        println!("mediajet is up: http://{}", ready.http_addr);
        if let Some(password) = &ready.generated_admin_password {
            println!("created admin@localhost with password {password} (shown only this once)");
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mediajet: {}", mediajet::error::chain(&err));
            ExitCode::FAILURE
        }
    }
}

/// Runs a client command; its error decides the exit code.
fn client(
    command: impl std::future::Future<Output = Result<(), mediajet::client::ClientError>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("mediajet: cannot start: {err}");
            return ExitCode::from(4);
        }
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mediajet: {}", mediajet::error::chain(&err));
            ExitCode::from(err.exit_code())
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return std::future::pending::<()>().await,
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
