//! Entry point: parses arguments, wires stdout/stderr and colour, maps results to exit codes.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use mlops_infra::apply::{Interrupt, Polling};
use mlops_infra::aws::call_log::CallLog;
use mlops_infra::aws::sdk::{SdkCloudFormation, load_config};
use mlops_infra::aws::sdk_platform::SdkPlatform;
use mlops_infra::cli::{CiCommand, Cli, ColorChoice, Command, PipelineCommand};
use mlops_infra::commands::acceptance::{self, Side};
use mlops_infra::commands::deploy::{self, Context};
use mlops_infra::commands::{self, Output};
use mlops_infra::commands::{identify, monitor, operate, registry, review};
use mlops_infra::error::ExitStatus;
use mlops_infra::view::Palette;

fn main() -> ExitCode {
    one_heap();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            // `--help` and `--version` are answers, not errors; any other parse failure is a
            // usage error, kept apart from 2 ("changes present" under --detailed-exitcode).
            return ExitCode::from(if error.use_stderr() {
                ExitStatus::Usage.code() as u8
            } else {
                ExitStatus::Success.code() as u8
            });
        }
    };
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
        // `-v` prints a line per API call, which a redrawn view would overwrite.
        live: std::io::stderr().is_terminal() && cli.global.verbose == 0,
        width: || {
            terminal_size::terminal_size_of(std::io::stderr()).map(|(width, _)| width.0 as usize)
        },
        height: || {
            terminal_size::terminal_size_of(std::io::stderr()).map(|(_, height)| height.0 as usize)
        },
        data_to_terminal: std::io::stdout().is_terminal(),
        verbose: cli.global.verbose,
    };
    let project_dir = cli.global.project_dir.as_path();
    let status = match &cli.command {
        Command::Render(args) => commands::render(project_dir, args, &mut output),
        Command::Validate(args) => commands::validate(project_dir, args, &mut output),
        Command::Completions(args) => {
            use clap::CommandFactory;
            let mut command = Cli::command();
            // Into memory first: clap_complete panics on a write error (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut command, "mlops-infra", &mut script);
            let _ = output.out.write_all(&script);
            ExitStatus::Success
        }
        command => run_against_aws(project_dir, command, &mut output),
    };
    ExitCode::from(status.code() as u8)
}

/// Makes glibc's allocator keep one heap for every thread. By default a second thread that
/// allocates gets a heap of its own, and memory freed in one heap is not reused by the other:
/// plan and apply check the environment on a second thread while they read AWS, which took a
/// 200-child plan's peak RSS from 93 MB to 111 MB (99 MB with one heap).
fn one_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt changes an allocator setting; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
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
        now: String::new(),
    };
    let now = aws_smithy_types::DateTime::from_millis(millis as i64)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default();
    let context = Context { now, ..context };
    let environment = environment_of(command);
    runtime.block_on(async {
        let (client, platform) = clients(project_dir, environment.as_deref(), output.verbose).await;
        let work = async {
            match command {
                Command::Plan(args) => {
                    deploy::plan(&client, &platform, project_dir, args, output, &context).await
                }
                Command::Apply(args) => {
                    deploy::apply(&client, &platform, project_dir, args, output, &context).await
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
                Command::Models(args) => {
                    registry::models(&client, &platform, project_dir, args, output).await
                }
                Command::Identify(args) => {
                    identify::identify(&client, &platform, project_dir, args, output).await
                }
                Command::Monitor(args) => {
                    monitor::monitor(&platform, project_dir, args, output).await
                }
                Command::Review(args) => {
                    review::review(&platform, &platform, project_dir, args, output, &interrupt)
                        .await
                }
                Command::Approve(args) => {
                    registry::approve(&platform, project_dir, args, output).await
                }
                Command::Reject(args) => {
                    registry::reject(&platform, project_dir, args, output).await
                }
                Command::Test(args) => {
                    acceptance::test(&client, &platform, project_dir, args, output, &context).await
                }
                Command::Promote(args) => {
                    let (to_client, to_platform) =
                        clients(project_dir, Some(&args.to), output.verbose).await;
                    let from = Side {
                        client: &client,
                        platform: &platform,
                    };
                    let to = Side {
                        client: &to_client,
                        platform: &to_platform,
                    };
                    acceptance::promote(from, to, project_dir, args, output, &context).await
                }
                Command::Pipeline(PipelineCommand::Start(args)) => {
                    operate::pipeline_start(&platform, project_dir, args, output).await
                }
                Command::Pipeline(PipelineCommand::Status(args)) => {
                    operate::pipeline_status(&platform, project_dir, args, output).await
                }
                Command::Ci(CiCommand::Run(args)) => {
                    operate::ci_run(&platform, project_dir, args, output, &context).await
                }
                Command::Doctor(args) => {
                    operate::doctor(&platform, project_dir, args, output).await
                }
                Command::Render(_) | Command::Validate(_) | Command::Completions(_) => {
                    ExitStatus::Failure
                }
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

/// The SDK clients for an environment: its region and profile (from its file), else the
/// standard chain's.
async fn clients(
    project_dir: &std::path::Path,
    environment: Option<&str>,
    verbose: u8,
) -> (SdkCloudFormation, SdkPlatform) {
    let environment =
        environment.and_then(|name| mlops_infra::config::load(project_dir, name).ok());
    // The standard chain reads the environment's keys before any profile: say so, rather than
    // let `profile:` be silently ignored.
    if let Some(profile) = environment
        .as_ref()
        .and_then(|environment| environment.profile.as_deref())
        && std::env::var_os("AWS_ACCESS_KEY_ID").is_some_and(|key| !key.is_empty())
    {
        eprintln!(
            "warning: using AWS_ACCESS_KEY_ID from the process environment, not `profile: {profile}` of environments/{}.yaml (environment variables come first in the credential chain)\n  hint: unset AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to use the profile",
            environment
                .as_ref()
                .map(|environment| environment.name.as_str())
                .unwrap_or_default()
        );
    }
    let config = load_config(
        environment
            .as_ref()
            .map(|environment| environment.region.as_str()),
        environment
            .as_ref()
            .and_then(|environment| environment.profile.as_deref()),
    )
    .await;
    // -v: a line per API call on stderr; -vv: per attempt too.
    let log = (verbose > 0).then(|| {
        CallLog::new(
            std::sync::Arc::new(|line: &str| eprintln!("{line}")),
            verbose > 1,
        )
    });
    (
        SdkCloudFormation::from_config_logged(&config, log.as_ref()),
        SdkPlatform::from_config_logged(&config, log.as_ref()),
    )
}

/// The environment a command talks to (for `promote`, the source; a saved plan names its own).
fn environment_of(command: &Command) -> Option<String> {
    Some(match command {
        Command::Plan(args) => args.environment.clone(),
        Command::Status(args) => args.environment.clone(),
        Command::Doctor(args) => args.environment.clone(),
        Command::Outputs(args) => args.environment.clone(),
        Command::Destroy(args) => args.environment.clone(),
        Command::Models(args) => args.environment.clone(),
        Command::Monitor(args) => args.environment.clone(),
        Command::Review(args) => args.environment.clone(),
        Command::Identify(args) => args.environment.clone(),
        Command::Approve(args) => args.environment.clone(),
        Command::Reject(args) => args.environment.clone(),
        Command::Test(args) => args.environment.clone(),
        Command::Promote(args) => args.from.clone(),
        Command::Pipeline(PipelineCommand::Start(args)) => args.environment.clone(),
        Command::Pipeline(PipelineCommand::Status(args)) => args.environment.clone(),
        Command::Ci(CiCommand::Run(args)) => args.environment.clone(),
        Command::Apply(args) => {
            let path = std::path::Path::new(&args.target);
            if path.is_file() {
                let text = std::fs::read_to_string(path).ok()?;
                let plan: serde_json::Value = serde_json::from_str(&text).ok()?;
                return plan.get("environment")?.as_str().map(str::to_string);
            }
            args.target.clone()
        }
        Command::Render(_) | Command::Validate(_) | Command::Completions(_) => return None,
    })
}
