//! The `keel` command line: `run`, `validate`, `print-config`, `reload`, `--version`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use keel::signals::Request;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// sysexits.h EX_CONFIG: the configuration is wrong.
const EX_CONFIG: u8 = 78;
/// sysexits.h EX_DATAERR: the store (or its fencing mark) is damaged and an operator must
/// act; the unit's `RestartPreventExitStatus=` keeps systemd from restarting into it.
const EX_DATAERR: u8 = 65;

#[derive(Parser)]
#[command(
    name = "keel",
    version,
    about = "LLM gateway, GPU ledger and code executor for a GPU box"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run keel in the foreground (systemd Type=notify aware).
    Run(ConfigArg),
    /// Check the configuration, print every problem, exit 78 if there is one.
    Validate(ConfigArg),
    /// Print the effective configuration (file + environment) with secrets hidden.
    PrintConfig(ConfigArg),
    /// Make the running keel re-read its configuration (SIGHUP to the process named in
    /// the data dir's keel.run.json), wait for the result and print it; exit 78 if the
    /// running keel refused the file (it then keeps its configuration).
    Reload(ConfigArg),
    /// The executor process (started by `keel run`, never by hand): runs user code in a
    /// sandbox, talking to its parent over fd 3.
    #[command(name = "executor-child", hide = true)]
    ExecutorChild,
    /// Applies the executor's sandbox to itself, tries what it must refuse and prints one
    /// JSON line per attempt (used by the tests; see README "Executor sandbox").
    #[command(name = "executor-sandbox-probe", hide = true)]
    ExecutorSandboxProbe {
        /// Files that must be unreadable (and whose directories unwritable) in the sandbox.
        #[arg(long = "deny-read")]
        deny_read: Vec<PathBuf>,
    },
}

#[derive(clap::Args)]
struct ConfigArg {
    /// Config file (default: $CREDENTIALS_DIRECTORY/keel.toml when systemd passes it as a
    /// credential, else ./config.toml, then /etc/keel/keel.toml).
    #[arg(long, short)]
    config: Option<PathBuf>,
}

/// mimalloc instead of glibc malloc: the gateway's per-request buffers made glibc's
/// malloc/free/consolidate ~15 % of proxy CPU under load (docs/gateway.md, Benchmark).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (arg, command) = match &cli.command {
        Command::Run(a) => (a, "run"),
        Command::Validate(a) => (a, "validate"),
        Command::PrintConfig(a) => (a, "print-config"),
        Command::Reload(a) => return reload_running(a.config.as_deref()),
        Command::ExecutorChild => return keel::executor::child::main(),
        Command::ExecutorSandboxProbe { deny_read } => {
            for line in keel::executor::sandbox::probe(deny_read) {
                println!("{line}");
            }
            return ExitCode::SUCCESS;
        }
    };
    let (path, config) = match load(arg.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match command {
        "validate" => {
            println!("{}", config.summary());
            ExitCode::SUCCESS
        }
        "print-config" => {
            print!("{}", config.to_redacted_toml());
            ExitCode::SUCCESS
        }
        _ => match run(config, &path) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("keel: {}", describe(&e));
                match e.downcast_ref::<keel::StartError>() {
                    Some(s) if s.needs_operator() => ExitCode::from(EX_DATAERR),
                    _ => ExitCode::FAILURE,
                }
            }
        },
    }
}

/// The error and its causes, each once: most of keel's errors already name their cause in
/// their own message, which `{:#}` would print a second time.
fn describe(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Loads the config (and says from where) or prints every error (`<key path>: <message>`)
/// and returns 78.
fn load(explicit: Option<&Path>) -> Result<(PathBuf, keel::config::Config), ExitCode> {
    let result =
        keel::config::resolve_path(explicit).and_then(|p| keel::config::load(&p).map(|c| (p, c)));
    result.map_err(|keel::config::LoadError(errors)| {
        for e in &errors {
            eprintln!("{e}");
        }
        eprintln!("keel: {} configuration error(s)", errors.len());
        ExitCode::from(EX_CONFIG)
    })
}

fn run(config: keel::config::Config, path: &Path) -> anyhow::Result<()> {
    keel::telemetry::logging::init(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("keel")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %path.display(), "{}", config.summary());
        let grace = config.shutdown_grace;
        // Before startup: a SIGHUP must not kill keel at any point (see keel::signals).
        let mut signals =
            keel::signals::Signals::install().context("cannot install signal handlers")?;
        let running = keel::start(config).await?;
        keel::systemd::notify_ready();
        let watchdog = keel::systemd::spawn_watchdog();
        loop {
            match signals.next().await {
                Request::Shutdown => break,
                Request::Reload => {
                    running.reload(path).await;
                }
            }
        }
        keel::systemd::notify_stopping();
        tracing::info!(grace = ?grace, "signal received; draining");
        running.shutdown(grace).await;
        if let Some(w) = watchdog {
            w.abort();
        }
        Ok(())
    })
}

/// How long `keel reload` waits for the running keel's report.
const RELOAD_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// `keel reload`: signals the keel that runs on this config's data dir and prints its
/// report. The running keel loads and validates the file itself (so an invalid file is
/// reported by the process that refused it); here only `data_dir` is read from it.
fn reload_running(explicit: Option<&Path>) -> ExitCode {
    let path = match keel::config::resolve_path(explicit) {
        Ok(p) => p,
        Err(keel::config::LoadError(errors)) => {
            for e in &errors {
                eprintln!("{e}");
            }
            return ExitCode::from(EX_CONFIG);
        }
    };
    let data_dir = keel::reload::data_dir_of(&path);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keel: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = match runtime.block_on(keel::reload::request(&data_dir, RELOAD_WAIT)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keel: {}", describe(&e.into()));
            return ExitCode::FAILURE;
        }
    };
    let pid = report.pid;
    let generation = report.generation;
    match report.result {
        keel::reload::Outcome::Ok => {
            println!(
                "keel (pid {pid}) reloaded {} (generation {generation})",
                report.config.display()
            );
            for change in &report.applied {
                println!("applied: {change}");
            }
            if report.applied.is_empty() {
                println!("applied: nothing changed");
            }
            for key in &report.needs_restart {
                println!("needs a restart: {key}");
            }
            ExitCode::SUCCESS
        }
        keel::reload::Outcome::Invalid => {
            eprintln!(
                "keel (pid {pid}) refused {} (generation {generation}); it keeps its configuration:",
                report.config.display()
            );
            for e in &report.errors {
                eprintln!("{e}");
            }
            ExitCode::from(EX_CONFIG)
        }
    }
}
