//! The mediajet binary: parses the command line, sets up logging and hands
//! over to the library.

use std::process::ExitCode;

use clap::Parser;
use mediajet::config::{Cli, Command};

fn main() -> ExitCode {
    mediajet::telemetry::init();
    let cli = Cli::parse();
    let config = match cli.command {
        Command::Up(config) => config,
        Command::Run(config) if config.nats_url.is_none() => {
            eprintln!("mediajet: `run` needs --nats-url (use `up` for a local nats-server)");
            return ExitCode::FAILURE;
        }
        Command::Run(config) => config,
    };
    let result = mediajet::app::run(config, shutdown_signal(), |ready| {
        println!("mediajet is up: http://{}", ready.http_addr);
        if let Some(password) = &ready.generated_admin_password {
            println!("created admin@localhost with password {password} (shown only this once)");
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mediajet: {err}");
            ExitCode::FAILURE
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
