//! Runs a command in-process against the in-memory fakes, with stdout and stderr captured, a
//! fast polling schedule, a fixed clock and change sets named apart per run.

use std::time::Duration;

use mlops_infra::apply::{Interrupt, Polling};
use mlops_infra::commands::Output;
use mlops_infra::commands::deploy::Context;
use mlops_infra::error::ExitStatus;
use mlops_infra::view::Palette;

pub const POLLING: Polling = Polling {
    initial: Duration::from_millis(1),
    max: Duration::from_millis(2),
    timeout: Duration::from_secs(5),
    attempts: 6,
};

/// What a command returned and wrote.
pub struct Captured {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command`; its change sets are named `mlops-infra-<name>-<run number>`.
pub async fn capture(
    name: &str,
    command: impl AsyncFnOnce(&mut Output, &Context) -> ExitStatus,
) -> Captured {
    run_captured(name, None, None, command).await
}

/// Runs `command` with a person answering every confirmation `answer` (true: "yes").
#[allow(dead_code)]
pub async fn capture_answering(
    name: &str,
    answer: bool,
    command: impl AsyncFnOnce(&mut Output, &Context) -> ExitStatus,
) -> Captured {
    run_captured(name, Some(answer), None, command).await
}

/// Runs `command` as in a colour terminal `width()` columns wide and `height()` lines high: the
/// live view redraws stderr in place.
#[allow(dead_code)]
pub async fn capture_live(
    name: &str,
    width: fn() -> Option<usize>,
    height: fn() -> Option<usize>,
    command: impl AsyncFnOnce(&mut Output, &Context) -> ExitStatus,
) -> Captured {
    run_captured(name, None, Some((width, height)), command).await
}

/// A terminal's width or height, read when the view is drawn.
type Dimension = fn() -> Option<usize>;

async fn run_captured(
    name: &str,
    answer: Option<bool>,
    terminal: Option<(Dimension, Dimension)>,
    command: impl AsyncFnOnce(&mut Output, &Context) -> ExitStatus,
) -> Captured {
    // Each run names its change sets apart, as the clock does for real runs.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let interrupt = Interrupt::default();
    let answering = move |_: &str| answer.unwrap_or(false);
    let status = {
        let mut output = Output {
            out: &mut out,
            err: &mut err,
            palette: Palette::new(terminal.is_some()),
            color: false,
            live: terminal.is_some(),
            width: terminal.map_or(|| None, |(width, _)| width),
            height: terminal.map_or(|| None, |(_, height)| height),
            data_to_terminal: false,
            verbose: 0,
        };
        let context = Context {
            polling: POLLING,
            change_set_name: format!("mlops-infra-{name}-{run}"),
            interrupt: &interrupt,
            confirm: answer.map(|_| &answering as &dyn Fn(&str) -> bool),
            now: "2026-11-25T10:00:00Z".into(),
        };
        command(&mut output, &context).await
    };
    Captured {
        status,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    }
}
