//! Entry point: parses arguments, wires stdout/stderr and colour, maps results to exit codes.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use mlops_infra::apply::{Interrupt, Polling};
use mlops_infra::aws::sdk::SdkCloudFormation;
use mlops_infra::cli::{Cli, ColorChoice, Command};
use mlops_infra::commands::deploy::{self, Context};
use mlops_infra::commands::{self, Output};
use mlops_infra::error::ExitStatus;
use mlops_infra::view::Palette;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = match cli.global.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
                && std::io::stderr().is_terminal()
        }
    };
    let color_out = match cli.global.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
                && std::io::stdout().is_terminal()
        }
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut output = Output {
        out: &mut stdout.lock(),
        err: &mut stderr.lock(),
        palette: Palette::new(color),
        color: color_out,
        live: std::io::stderr().is_terminal(),
        verbose: cli.global.verbose,
    };
    let project_dir = cli.global.project_dir.as_path();
    let status = match &cli.command {
        Command::Render(args) => commands::render(project_dir, args, &mut output),
        Command::Validate(args) => commands::validate(project_dir, args, &mut output),
        command => run_against_aws(project_dir, command, &mut output),
    };
    ExitCode::from(status.code() as u8)
}

/// The commands that talk to AWS: one current-thread runtime, the SDK client in the
/// environment's region, Ctrl-C turned into a polite interrupt.
fn run_against_aws(
    project_dir: &std::path::Path,
    command: &Command,
    output: &mut Output,
) -> ExitStatus {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = writeln!(output.err, "error: cannot start the async runtime: {error}");
            return ExitStatus::Failure;
        }
    };
    let interrupt = Interrupt::default();
    let confirm = |question: &str| -> bool {
        eprint!("{question}");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).is_ok() && answer.trim() == "yes"
    };
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis())
        .unwrap_or_default();
    let context = Context {
        polling: Polling::default(),
        change_set_name: mlops_infra::state::change_set_name(millis),
        interrupt: &interrupt,
        confirm: std::io::stdin()
            .is_terminal()
            .then_some(&confirm as &dyn Fn(&str) -> bool),
    };
    let region = region_of(project_dir, command);
    runtime.block_on(async {
        let client = SdkCloudFormation::from_environment(region.as_deref()).await;
        let work = async {
            match command {
                Command::Plan(args) => {
                    deploy::plan(&client, project_dir, args, output, &context).await
                }
                Command::Apply(args) => {
                    deploy::apply(&client, project_dir, args, output, &context).await
                }
                Command::Status(args) => {
                    deploy::status(&client, project_dir, args, output, &context).await
                }
                Command::Outputs(args) => {
                    deploy::outputs(&client, project_dir, args, output, &context).await
                }
                Command::Destroy(args) => {
                    deploy::destroy(&client, project_dir, args, output, &context).await
                }
                Command::Render(_) | Command::Validate(_) => ExitStatus::Failure,
            }
        };
        let watch = async {
            loop {
                if tokio::signal::ctrl_c().await.is_err() {
                    std::future::pending::<()>().await;
                }
                eprintln!(
                    "\ninterrupted: finishing the current step and deleting unexecuted change sets"
                );
                interrupt.raise();
            }
        };
        futures::pin_mut!(work, watch);
        match futures::future::select(work, watch).await {
            futures::future::Either::Left((status, _)) => status,
            futures::future::Either::Right(((), _)) => ExitStatus::Failure,
        }
    })
}

/// The region to talk to: the environment's (from its file, or from a saved plan).
fn region_of(project_dir: &std::path::Path, command: &Command) -> Option<String> {
    let name = match command {
        Command::Plan(args) => args.environment.clone(),
        Command::Status(args) => args.environment.clone(),
        Command::Outputs(args) => args.environment.clone(),
        Command::Destroy(args) => args.environment.clone(),
        Command::Apply(args) => {
            let path = std::path::Path::new(&args.target);
            if path.is_file() {
                let text = std::fs::read_to_string(path).ok()?;
                let plan: serde_json::Value = serde_json::from_str(&text).ok()?;
                return plan.get("region")?.as_str().map(str::to_string);
            }
            args.target.clone()
        }
        Command::Render(_) | Command::Validate(_) => return None,
    };
    mlops_infra::config::load(project_dir, &name)
        .ok()
        .map(|environment| environment.region)
}
