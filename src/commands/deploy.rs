//! The commands that talk to AWS — plan, apply, status, outputs, destroy — written against
//! the `CloudFormation` boundary so tests drive them with the in-memory fake.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crate::apply::{self, ApplyOptions, Interrupt, Outcome, Polling, Progress, Reporter};
use crate::aws::platform::Platform;
use crate::aws::{AwsError, CloudFormation};
use crate::cli::{
    ApplyArgs, DestroyArgs, OutputFormat, OutputsArgs, PlanArgs, PlanFormat, StatusArgs,
};
use crate::config::Environment;
use crate::deployed_record::Record;
use crate::error::{Error, ExitStatus};
use crate::graph::Graph;
use crate::plan::{self, Plan};
use crate::plan_view;
use crate::release::serving;
use crate::render::{self, RenderedStack};
use crate::state;
use crate::validate::{self, Severity};

use super::{Output, load_environment, wrong_account};

/// What a run needs besides its arguments: injected so tests control it.
pub struct Context<'a> {
    pub polling: Polling,
    pub change_set_name: String,
    pub interrupt: &'a Interrupt,
    /// Asks the user to confirm; `None` when nobody can answer (no terminal).
    pub confirm: Option<&'a dyn Fn(&str) -> bool>,
    /// The time of the run (RFC 3339), for what the release flow records.
    pub now: String,
}

pub(crate) fn aws_error(action: &str, error: AwsError) -> Error {
    let hint = match &error {
        AwsError::AccessDenied(_) => Some("check the credentials in use (profile, SSO session, environment) and their permissions; `aws sts get-caller-identity` shows who you are".to_string()),
        AwsError::Transport(_) => Some("check the network and AWS_ENDPOINT_URL if one is set".to_string()),
        AwsError::Unreachable(_) => Some(match std::env::var("AWS_ENDPOINT_URL") {
            Ok(url) if !url.is_empty() => format!(
                "AWS_ENDPOINT_URL is {url}: is the local AWS running? `scripts/local-aws start`, then `eval \"$(scripts/local-aws env)\"`"
            ),
            _ => "check the network, a proxy (HTTPS_PROXY) or a VPN".to_string(),
        }),
        AwsError::NoCredentials => Some(
            "set AWS_PROFILE (or `profile:` in the environment file), log in with `aws sso login`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".to_string(),
        ),
        AwsError::Throttled(_) => Some("AWS is throttling requests; run again in a minute".to_string()),
        AwsError::Unsupported(_) => Some("this endpoint does not offer the API; plan without --refresh / --revert-drift".to_string()),
        _ => None,
    };
    Error::Usage {
        message: format!("{action}: {error}"),
        hint,
    }
}

/// Loads, renders and validates: nothing reaches AWS unless the offline checks pass.
fn prepare(
    project_dir: &Path,
    name: &str,
    output: &mut Output,
) -> Result<(Environment, Vec<RenderedStack>), ExitStatus> {
    let (environment, rendered) = load_and_render(project_dir, name, output)?;
    passes(
        &environment,
        &validate::validate(&environment, &rendered),
        output,
    )?;
    Ok((environment, rendered))
}

fn load_and_render(
    project_dir: &Path,
    name: &str,
    output: &mut Output,
) -> Result<(Environment, Vec<RenderedStack>), ExitStatus> {
    let environment = load_environment(project_dir, name, output)?;
    let rendered =
        render::render(project_dir, &environment).map_err(|errors| output.fail(&errors))?;
    Ok((environment, rendered))
}

/// Prints the errors among `diagnostics`, if any, and fails.
fn passes(
    environment: &Environment,
    diagnostics: &[validate::Diagnostic],
    output: &mut Output,
) -> Result<(), ExitStatus> {
    let errors: Vec<_> = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    for diagnostic in &errors {
        let _ = crate::view::write_diagnostic(output.err, &output.palette, diagnostic);
    }
    Err(output.fail(&[Error::Invalid {
        environment: environment.name.clone(),
        count: errors.len(),
    }]))
}

/// Loads and renders `name`, then checks it offline on another thread while the deployed
/// stacks are read (`guard`, then [`plan_against_aws`]): the reads change nothing, and at
/// hundreds of stacks the checks (the permission analysis most) take as long as hundreds of
/// reads. A failed check ends the reads at once and is all that is reported, as when the
/// checks ran first.
async fn checked_plan<C: CloudFormation, P: Platform>(
    client: &C,
    platform: &P,
    project_dir: &Path,
    name: &str,
    output: &mut Output<'_>,
    context: &Context<'_>,
    refresh: state::Refresh,
) -> Result<(Environment, Plan, Records), ExitStatus> {
    use futures::future::{Either, select};
    let (environment, rendered) = load_and_render(project_dir, name, output)?;
    let rendered = std::sync::Arc::new(rendered);
    let (sender, checked) = futures::channel::oneshot::channel();
    let checker = {
        let (environment, rendered) = (environment.clone(), std::sync::Arc::clone(&rendered));
        std::thread::spawn(move || {
            let _ = sender.send(validate::validate(&environment, &rendered));
        })
    };
    // The reads borrow the environment: they end before it is handed back.
    let (diagnostics, planned) = {
        let reads = async {
            guard(client, &environment)
                .await
                .map_err(|error| vec![error])?;
            plan_against_aws(client, platform, &environment, &rendered, context, refresh).await
        };
        futures::pin_mut!(reads);
        match select(checked, reads).await {
            Either::Left((diagnostics, reads)) => {
                if let Ok(diagnostics) = &diagnostics {
                    passes(&environment, diagnostics, output)?;
                }
                (diagnostics, reads.await)
            }
            Either::Right((planned, checked)) => (checked.await, planned),
        }
    };
    let _ = checker.join();
    let Ok(diagnostics) = diagnostics else {
        // The checks panicked; the panic's own report says where.
        return Err(output.fail(&[Error::Usage {
            message: "the offline checks stopped unexpectedly".into(),
            hint: None,
        }]));
    };
    passes(&environment, &diagnostics, output)?;
    let (plan, records) = planned.map_err(|errors| output.fail(&errors))?;
    Ok((environment, plan, records))
}

/// `--allow-replace` names logical IDs; one that matches no resource of the plan's stacks is a
/// typo that would otherwise silently allow nothing.
fn check_allowed_replacements(plan: &plan::Plan, allowed: &[String]) -> Result<(), Error> {
    if allowed.is_empty() {
        // Nothing to look up: the templates are not parsed again.
        return Ok(());
    }
    let known: Vec<String> = plan
        .stacks
        .iter()
        .flat_map(|stack| {
            crate::template::Template::parse(&stack.template_body)
                .map(|template| template.resources.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .collect();
    for id in allowed {
        if !known.contains(id) {
            let close = crate::error::did_you_mean(id, known.iter().map(String::as_str));
            return Err(Error::Usage {
                message: format!(
                    "--allow-replace {id}: no resource of `{}` has that logical ID",
                    plan.environment
                ),
                hint: Some(match close {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => "name the logical ID the plan shows as DANGEROUS".into(),
                }),
            });
        }
    }
    Ok(())
}

/// The account guard: credentials for another account never touch this environment.
pub(crate) async fn guard<C: CloudFormation>(
    client: &C,
    environment: &Environment,
) -> Result<(), Error> {
    match client.caller_account().await {
        Ok(Some(account)) if account != environment.account_id => {
            Err(wrong_account(&account, environment))
        }
        Ok(_) => Ok(()),
        Err(error) => Err(aws_error("cannot check the account", error)),
    }
}

fn keep_stacks(plan: &mut Plan, stacks: &[String]) -> Result<(), Error> {
    if stacks.is_empty() {
        return Ok(());
    }
    // A stack's full CloudFormation name names it as well as its id.
    let stacks: Vec<String> = stacks
        .iter()
        .map(|given| {
            plan.stacks
                .iter()
                .find(|stack| &stack.name == given)
                .map_or_else(|| given.clone(), |stack| stack.id.clone())
        })
        .collect();
    if let Some(unknown) = stacks.iter().find(|id| plan.stack(id).is_none()) {
        let known: Vec<&str> = plan.stacks.iter().map(|stack| stack.id.as_str()).collect();
        return Err(Error::Usage {
            message: format!(
                "environment `{}` has no stack `{unknown}`",
                plan.environment
            ),
            hint: Some(
                match crate::error::did_you_mean(unknown, known.iter().copied()) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => format!("stacks: {}", known.join(", ")),
                },
            ),
        });
    }
    plan.stacks.retain(|stack| stacks.contains(&stack.id));
    Ok(())
}

/// The environment's record of deployed templates as stored, and what a plan read.
struct Records {
    stored: Record,
    seen: Record,
    polling: Polling,
}

impl Records {
    async fn stored<C: CloudFormation>(
        client: &C,
        environment: &Environment,
        polling: Polling,
    ) -> Self {
        let stored = state::read_record(client, environment, polling).await;
        Records {
            seen: stored.clone(),
            stored,
            polling,
        }
    }

    /// Saves the record after `report` (and what the plan read) when it says something new. A
    /// record that cannot be saved costs the next plan its calls, not this apply its result.
    async fn save<C: CloudFormation>(
        &self,
        client: &C,
        environment: &Environment,
        plan: &Plan,
        report: &apply::ApplyReport,
        output: &mut Output<'_>,
    ) {
        let mut before = self.seen.clone();
        before.fill_from(&self.stored);
        let after = crate::deployed_record::after_apply(&before, environment, plan, report);
        if after == self.stored {
            return;
        }
        let bucket = &environment.storage.artifacts_bucket_name;
        let key = crate::deployed_record::key(&environment.prefix());
        let json = after.to_json();
        if let Err(error) =
            apply::retry(self.polling, || client.upload_template(bucket, &key, &json)).await
        {
            let _ = writeln!(
                output.err,
                "note: could not save the record of deployed templates (s3://{bucket}/{key}): {error}; the next plan reads every template"
            );
        }
    }
}

/// Plans `rendered` against what is deployed: what each endpoint serves (the registry) and the
/// deployed stacks are read at the same time (the stacks after the record of deployed
/// templates), the routers' classes are checked, then the plan.
async fn plan_against_aws<C: CloudFormation, P: Platform>(
    client: &C,
    platform: &P,
    environment: &Environment,
    rendered: &[RenderedStack],
    context: &Context<'_>,
    refresh: state::Refresh,
) -> Result<(Plan, Records), Vec<Error>> {
    let (serving, read) = futures::join!(serving::resolve_all(platform, environment), async {
        let stored = state::read_record(client, environment, context.polling).await;
        let deployed = state::read(client, rendered, &stored, context.polling).await;
        (stored, deployed)
    });
    let serving = serving.map_err(|error| vec![error])?;
    let cannot_read = |error| vec![aws_error("cannot read the deployed stacks", error)];
    let (stored, deployed) = read;
    let mut deployed = deployed.map_err(cannot_read)?;
    let records = Records {
        stored,
        seen: std::mem::take(&mut deployed.record),
        polling: context.polling,
    };
    let disagreements = crate::release::routes::check(platform, environment, &serving).await;
    if !disagreements.is_empty() {
        return Err(disagreements);
    }
    state::plan(
        client,
        environment,
        rendered,
        deployed,
        serving,
        context.polling,
        &context.change_set_name,
        refresh,
    )
    .await
    .map(|plan| (plan, records))
    .map_err(cannot_read)
}

pub async fn plan<C: CloudFormation, P: Platform>(
    client: &C,
    platform: &P,
    project_dir: &Path,
    args: &PlanArgs,
    output: &mut Output<'_>,
    context: &Context<'_>,
) -> ExitStatus {
    let refresh = state::Refresh {
        drift: args.refresh,
        revert_drift: args.revert_drift,
    };
    let mut plan = match checked_plan(
        client,
        platform,
        project_dir,
        &args.environment,
        output,
        context,
        refresh,
    )
    .await
    {
        Ok((_, plan, _)) => plan,
        Err(status) => return status,
    };
    if let Err(error) = keep_stacks(&mut plan, &args.stacks) {
        return output.fail(&[error]);
    }
    let text = match args.output {
        PlanFormat::Text => plan_view::text(&plan, output.color),
        PlanFormat::Json => plan_view::json(&plan),
        PlanFormat::Markdown => plan_view::markdown(&plan),
    };
    let _ = write!(output.out, "{text}");
    if let Some(path) = &args.out {
        if let Err(source) = std::fs::write(path, plan_view::json(&plan)) {
            return output.fail(&[Error::io("write", path, source)]);
        }
        let _ = writeln!(
            output.err,
            "saved the plan to {}; apply it with `mlops-infra apply {}`",
            path.display(),
            path.display()
        );
    }
    if args.detailed_exitcode && plan.has_changes() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    }
}

/// One line per event: for CI logs and any output that is not a terminal.
struct LineReporter<'a> {
    err: RefCell<&'a mut dyn Write>,
    started: Instant,
}

impl Reporter for LineReporter<'_> {
    fn report(&self, progress: Progress) {
        let elapsed = self.started.elapsed().as_secs();
        // Formatted first, written at once: standard error is unbuffered, and a formatted write
        // is one system call per piece.
        let line = match progress {
            Progress::Started { stack } => format!("[{elapsed:>4}s] {stack}: starting\n"),
            Progress::Note { stack, message } => format!("[{elapsed:>4}s] {stack}: {message}\n"),
            Progress::Event { stack, event } => format!(
                "[{elapsed:>4}s] {stack}: {} {} {}{}\n",
                event.logical_id,
                event.resource_type,
                event.status,
                event
                    .reason
                    .map(|reason| format!(" ({reason})"))
                    .unwrap_or_default()
            ),
            Progress::Finished { stack, outcome } => {
                format!("[{elapsed:>4}s] {stack}: {}\n", describe(&outcome))
            }
        };
        let _ = self.err.borrow_mut().write_all(line.as_bytes());
    }
}

/// A live view for a terminal: one line per stack (state, elapsed time, latest event),
/// redrawn in place as progress arrives, every line fitted to the terminal's width so nothing
/// wraps (a wrapped line would break the redraw), and no more lines than the terminal's height
/// (the cursor cannot move above the screen's top: a taller view would be drawn again below
/// itself).
struct LiveReporter<'a> {
    err: RefCell<&'a mut dyn Write>,
    lines: RefCell<indexmap::IndexMap<String, LiveLine>>,
    drawn: std::cell::Cell<usize>,
    /// How many stacks have finished so far (each finished line keeps its place in that order).
    finished: std::cell::Cell<u64>,
    width: fn() -> Option<usize>,
    height: fn() -> Option<usize>,
    color: bool,
}

struct LiveLine {
    started: Instant,
    state: String,
    latest: String,
    /// When it finished, in the order stacks finished.
    finished: Option<u64>,
}

/// The fewest lines the live view keeps however low the terminal (it then scrolls).
const LIVE_MIN_ROWS: usize = 4;

/// One stack of the live view, for [`live_selection`]: whether (and in which order) it finished,
/// and whether it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveState {
    pub finished: Option<u64>,
    pub failed: bool,
}

/// Which stacks the live view shows in `room` lines, in the order they started, and how many
/// finished and how many under way it leaves out (then counted on a last line). All of them when
/// they fit; else failures first, then the stacks under way, then those that finished last.
pub fn live_selection(stacks: &[LiveState], room: usize) -> (Vec<usize>, usize, usize) {
    if stacks.len() <= room {
        return ((0..stacks.len()).collect(), 0, 0);
    }
    let keep = room.saturating_sub(1);
    let mut order: Vec<usize> = (0..stacks.len()).collect();
    order.sort_by_key(|&index| {
        let stack = stacks[index];
        let rank = match (stack.failed, stack.finished) {
            (true, _) => 0,
            (false, None) => 1,
            (false, Some(_)) => 2,
        };
        (rank, std::cmp::Reverse(stack.finished.unwrap_or(0)), index)
    });
    let (shown, left_out) = order.split_at(keep);
    let under_way = left_out
        .iter()
        .filter(|&&index| stacks[index].finished.is_none())
        .count();
    let mut shown = shown.to_vec();
    shown.sort_unstable();
    (shown, left_out.len() - under_way, under_way)
}

/// The live view's last line when stacks are left out: `… 380 more: 376 finished, 4 under way`.
pub fn live_more_row(finished: usize, under_way: usize, width: usize) -> String {
    let parts: Vec<String> = [(finished, "finished"), (under_way, "under way")]
        .into_iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, what)| format!("{count} {what}"))
        .collect();
    cut_to(
        &format!("  … {} more: {}", finished + under_way, parts.join(", ")),
        width.saturating_sub(1),
    )
}

/// Below this many columns the live view falls back to one line per event.
pub const LIVE_MIN_WIDTH: usize = 60;

/// One row of the live view in at most `width - 1` columns (the last column would wrap on
/// some terminals): the latest event goes first, then the state column shrinks, then the
/// stack name; what is cut ends in `…`. With `color` the state is coloured (green done, red
/// failed, yellow under way), which takes no columns.
pub fn live_row(
    stack: &str,
    state: &str,
    seconds: u64,
    latest: &str,
    width: usize,
    color: bool,
) -> String {
    let room = width.saturating_sub(1);
    let time = format!("{seconds:>4}s");
    // "  " name " " state " " time "  " latest
    let fixed = 2 + 1 + 1 + time.len() + 2;
    let (mut name_width, mut state_width) = (45_usize, 24_usize);
    let mut latest_width = room.saturating_sub(fixed + name_width + state_width);
    if latest_width < 8 {
        latest_width = 0;
        let over = (fixed + name_width + state_width).saturating_sub(room);
        let from_state = over.min(state_width.saturating_sub(12));
        state_width -= from_state;
        name_width -= (over - from_state).min(name_width.saturating_sub(16));
    }
    let style = if state.starts_with("done") {
        crate::view::status_style("COMPLETE", color)
    } else if state == "working" {
        crate::view::status_style("IN_PROGRESS", color)
    } else {
        crate::view::status_style(state, color)
    };
    let (name, state, latest) = (
        fit(stack, name_width),
        fit(state, state_width),
        cut_to(latest, latest_width),
    );
    let plain = format!("  {name} {state} {time}  {latest}");
    if plain.trim_end().chars().count() > room {
        // Only a very narrow window or a very long apply: cut, uncoloured.
        return cut_to(plain.trim_end(), room);
    }
    format!("  {name} {style}{state}{style:#} {time}  {latest}")
        .trim_end()
        .to_string()
}

/// `text` padded or cut to exactly `width` columns.
fn fit(text: &str, width: usize) -> String {
    format!("{:<width$}", cut_to(text, width))
}

/// `text` cut to at most `width` columns, ending in `…` when cut.
fn cut_to(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

impl LiveReporter<'_> {
    fn redraw(&self) {
        use std::fmt::Write as _;
        let width = (self.width)().unwrap_or(120).max(20);
        // One line stays free for the cursor below the view.
        let room = (self.height)().map_or(usize::MAX, |height| {
            height.saturating_sub(1).max(LIVE_MIN_ROWS)
        });
        let lines = self.lines.borrow();
        let states: Vec<LiveState> = lines
            .values()
            .map(|line| LiveState {
                finished: line.finished,
                failed: line.state.starts_with("FAILED"),
            })
            .collect();
        let (shown, finished, under_way) = live_selection(&states, room);
        // The whole frame at once: standard error is unbuffered.
        let mut frame = String::new();
        if self.drawn.get() > 0 {
            let _ = write!(frame, "\x1b[{}A", self.drawn.get());
        }
        for &index in &shown {
            let (stack, line) = lines.get_index(index).expect("an index of the view");
            let seconds = line.started.elapsed().as_secs();
            let row = live_row(stack, &line.state, seconds, &line.latest, width, self.color);
            let _ = writeln!(frame, "\r\x1b[2K{row}");
        }
        let mut drawn = shown.len();
        if finished + under_way > 0 {
            let _ = writeln!(
                frame,
                "\r\x1b[2K{}",
                live_more_row(finished, under_way, width)
            );
            drawn += 1;
        }
        // A frame shorter than the last one (stacks left out since) clears what is below it.
        let cleared = self.drawn.get().saturating_sub(drawn);
        for _ in 0..cleared {
            let _ = writeln!(frame, "\r\x1b[2K");
        }
        self.drawn.set(drawn + cleared);
        let mut err = self.err.borrow_mut();
        let _ = err.write_all(frame.as_bytes());
        let _ = err.flush();
    }
}

impl Reporter for LiveReporter<'_> {
    fn report(&self, progress: Progress) {
        {
            let mut lines = self.lines.borrow_mut();
            match progress {
                Progress::Started { stack } => {
                    lines.insert(
                        stack,
                        LiveLine {
                            started: Instant::now(),
                            state: "working".into(),
                            latest: String::new(),
                            finished: None,
                        },
                    );
                }
                Progress::Note { stack, message } => {
                    if let Some(line) = lines.get_mut(&stack) {
                        line.latest = message;
                    }
                }
                Progress::Event { stack, event } => {
                    if let Some(line) = lines.get_mut(&stack) {
                        if event.logical_id == stack {
                            line.state = event.status.clone();
                        }
                        line.latest = format!("{} {}", event.logical_id, event.status);
                    }
                }
                Progress::Finished { stack, outcome } => {
                    let entry = lines.entry(stack).or_insert_with(|| LiveLine {
                        started: Instant::now(),
                        state: String::new(),
                        latest: String::new(),
                        finished: None,
                    });
                    entry.state = describe(&outcome).chars().take(60).collect();
                    entry.finished = Some(self.finished.get());
                    self.finished.set(self.finished.get() + 1);
                }
            }
        }
        self.redraw();
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Applied { status } => format!("done ({status})"),
        Outcome::Unchanged => "no changes".into(),
        Outcome::Failed {
            status,
            resource,
            reason,
        } => format!(
            "FAILED{}{}: {reason}",
            status
                .as_deref()
                .map(|status| format!(" ({status})"))
                .unwrap_or_default(),
            resource
                .as_deref()
                .map(|resource| format!(", first failure at {resource}"))
                .unwrap_or_default()
        ),
        Outcome::Skipped { reason } => format!("skipped: {reason}"),
        Outcome::Interrupted { reason } => format!("interrupted: {reason}"),
    }
}

pub async fn apply<C: CloudFormation, P: Platform>(
    client: &C,
    platform: &P,
    project_dir: &Path,
    args: &ApplyArgs,
    output: &mut Output<'_>,
    context: &Context<'_>,
) -> ExitStatus {
    let saved = Path::new(&args.target).is_file();
    // A path that is not there is a missing saved plan, not an environment name.
    if !saved && (args.target.contains('/') || args.target.ends_with(".json")) {
        return output.fail(&[Error::Usage {
            message: format!("{}: no such file", args.target),
            hint: Some(
                "apply takes an environment name (`mlops-infra apply staging`) or a plan saved by `mlops-infra plan <env> --out FILE`"
                    .into(),
            ),
        }]);
    }
    let (environment, mut plan, records) = if saved {
        let path = Path::new(&args.target);
        let plan: Plan = match std::fs::read_to_string(path)
            .map_err(|source| Error::io("read", path, source))
            .and_then(|text| {
                serde_json::from_str(&text).map_err(|error| Error::Usage {
                    message: format!("{} is not a saved plan: {error}", path.display()),
                    hint: Some("save one with `mlops-infra plan <env> --out FILE`".into()),
                })
            }) {
            Ok(plan) => plan,
            Err(error) => return output.fail(&[error]),
        };
        if plan.format_version != plan::FORMAT_VERSION {
            return output.fail(&[Error::Usage {
                message: format!(
                    "{} was saved by another version of mlops-infra (format {})",
                    path.display(),
                    plan.format_version
                ),
                hint: Some("plan again with this version".into()),
            }]);
        }
        let environment = match load_environment(project_dir, &plan.environment, output) {
            Ok(environment) => environment,
            Err(status) => return status,
        };
        let records = Records::stored(client, &environment, context.polling).await;
        (environment, plan, records)
    } else {
        let refresh = state::Refresh {
            drift: args.revert_drift,
            revert_drift: args.revert_drift,
        };
        match checked_plan(
            client,
            platform,
            project_dir,
            &args.target,
            output,
            context,
            refresh,
        )
        .await
        {
            Ok(planned) => planned,
            Err(status) => return status,
        }
    };
    if saved {
        if let Err(error) = guard(client, &environment).await {
            return output.fail(&[error]);
        }
        match apply::stale_stacks(client, &plan, context.polling).await {
            Ok(stale) if !stale.is_empty() => {
                return output.fail(&[Error::Usage {
                    message: format!(
                        "the saved plan is stale: {} changed since it was made",
                        stale.join(", ")
                    ),
                    hint: Some("plan again and review the new plan".into()),
                }]);
            }
            Ok(_) => {}
            Err(error) => {
                return output.fail(&[aws_error("cannot read the deployed stacks", error)]);
            }
        }
    }
    if let Err(error) = keep_stacks(&mut plan, &args.stacks) {
        return output.fail(&[error]);
    }
    let _ = write!(output.err, "{}", plan_view::text(&plan, output.color));
    let options = ApplyOptions {
        allow_replace: args.allow_replace.clone(),
        concurrency: args.concurrency,
        polling: context.polling,
        change_set_name: context.change_set_name.clone(),
        template_bucket: environment.storage.artifacts_bucket_name.clone(),
        early_dependents: environment.apply.start_dependents
            == crate::config::apply::StartDependents::AtConfigurationComplete,
    };
    if let Err(error) = check_allowed_replacements(&plan, &args.allow_replace) {
        return output.fail(&[error]);
    }
    let refusals = apply::refusals(&plan, &options);
    if !refusals.is_empty() {
        let errors: Vec<Error> = refusals
            .into_iter()
            .map(|message| Error::Usage {
                message,
                hint: None,
            })
            .collect();
        return output.fail(&errors);
    }
    if !plan.has_changes() {
        let _ = writeln!(output.err, "nothing to apply");
        let report = apply::ApplyReport::default();
        records
            .save(client, &environment, &plan, &report, output)
            .await;
        return ExitStatus::Success;
    }
    let recreated: Vec<&str> = plan
        .stacks
        .iter()
        .filter(|stack| stack.action == plan::StackAction::Recreate)
        .map(|stack| stack.name.as_str())
        .collect();
    let broadened = plan
        .stacks
        .iter()
        .flat_map(|stack| &stack.resources)
        .filter(|resource| resource.broadening.is_some())
        .count();
    let question = if plan.protected {
        Some(format!(
            "apply these changes to protected environment `{}`? type yes: ",
            plan.environment
        ))
    } else if !recreated.is_empty() {
        Some(format!(
            "delete and create again {} (their first create failed)? type yes: ",
            recreated.join(", ")
        ))
    } else if broadened > 0 {
        // As `cdk deploy --require-approval broadening`: new grants are a reviewer's call.
        Some(format!(
            "grant new permissions ({broadened} resource(s), listed above)? type yes: "
        ))
    } else {
        None
    };
    if let Some(question) = question.filter(|_| !args.yes) {
        match context.confirm {
            Some(confirm) if confirm(&question) => {}
            Some(_) => {
                let _ = writeln!(output.err, "not applied");
                return ExitStatus::Failure;
            }
            None => {
                return output.fail(&[Error::Usage {
                    message: format!(
                        "{} and nobody can confirm here",
                        question.trim_end_matches("? type yes: ")
                    ),
                    hint: Some("review the plan above, then pass --yes".into()),
                }]);
            }
        }
    }
    let wide_enough = (output.width)().is_none_or(|width| width >= LIVE_MIN_WIDTH);
    let live = output.live && wide_enough;
    let report = if live {
        let reporter = LiveReporter {
            err: RefCell::new(&mut *output.err),
            lines: RefCell::default(),
            drawn: Default::default(),
            finished: Default::default(),
            width: output.width,
            height: output.height,
            color: output.palette.enabled,
        };
        apply::apply(client, &plan, &options, &reporter, context.interrupt).await
    } else {
        let reporter = LineReporter {
            err: RefCell::new(&mut *output.err),
            started: Instant::now(),
        };
        apply::apply(client, &plan, &options, &reporter, context.interrupt).await
    };
    // The live view already shows each stack's outcome in place.
    if !live {
        let _ = writeln!(output.err, "\nsummary:");
        for stack in &report.stacks {
            let _ = writeln!(
                output.err,
                "  {:<45} {}",
                stack.name,
                describe(&stack.outcome)
            );
        }
    }
    records
        .save(client, &environment, &plan, &report, output)
        .await;
    write_apply_summary(&report, output);
    if args.output == crate::cli::OutputFormat::Json || !output.data_to_terminal {
        let _ = writeln!(
            output.out,
            "{}",
            serde_json::to_string(&report).unwrap_or_default()
        );
    }
    if report.succeeded() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    }
}

/// The line a person reads at the end of an apply, what did not go through and why, and the
/// outputs people reach for next (endpoint names, the API's URL).
fn write_apply_summary(report: &apply::ApplyReport, output: &mut Output<'_>) {
    let (mut created, mut updated, mut unchanged, mut failed, mut skipped, mut interrupted) =
        (0, 0, 0, 0, 0, 0);
    for stack in &report.stacks {
        match &stack.outcome {
            apply::Outcome::Applied { status } if status.starts_with("CREATE") => created += 1,
            apply::Outcome::Applied { .. } => updated += 1,
            apply::Outcome::Unchanged => unchanged += 1,
            apply::Outcome::Failed { .. } => failed += 1,
            apply::Outcome::Skipped { .. } => skipped += 1,
            apply::Outcome::Interrupted { .. } => interrupted += 1,
        }
    }
    let mut counts =
        format!("{created} created, {updated} updated, {unchanged} unchanged, {failed} failed");
    if skipped > 0 {
        counts.push_str(&format!(", {skipped} skipped"));
    }
    if interrupted > 0 {
        counts.push_str(&format!(", {interrupted} interrupted"));
    }
    let verdict = if report.succeeded() {
        "Apply complete"
    } else if interrupted > 0 {
        "Apply interrupted"
    } else {
        "Apply failed"
    };
    let _ = writeln!(output.err, "\n{verdict}: {counts} (stacks).");
    for stack in &report.stacks {
        if !stack.outcome.is_success() {
            let _ = writeln!(output.err, "  {}: {}", stack.name, describe(&stack.outcome));
        }
    }
    let mut endpoints = Vec::new();
    let mut api = None;
    for stack in report
        .stacks
        .iter()
        .filter(|stack| stack.outcome.is_success())
    {
        let reads_outputs = stack.id == "api" || stack.id.starts_with("endpoint-");
        if !reads_outputs {
            continue;
        }
        if let Some(found) = report.outputs.get(&stack.id) {
            if let Some(name) = found.get("EndpointName") {
                endpoints.push(name.clone());
            }
            if let Some(url) = found.get("ApiUrl") {
                api = Some(url.clone());
            }
        }
    }
    if !endpoints.is_empty() {
        let _ = writeln!(output.err, "  endpoints: {}", endpoints.join(", "));
    }
    if let Some(url) = api {
        let _ = writeln!(output.err, "  API: {url}");
    }
}

/// Loads and checks an environment, then reads what of it is deployed.
async fn read<C: CloudFormation>(
    client: &C,
    project_dir: &Path,
    name: &str,
    output: &mut Output<'_>,
    context: &Context<'_>,
) -> Result<(Environment, Vec<RenderedStack>, plan::Deployed), ExitStatus> {
    let (environment, rendered) = prepare(project_dir, name, output)?;
    // Another account's credentials would find nothing and report every stack missing.
    if let Err(error) = guard(client, &environment).await {
        return Err(output.fail(&[error]));
    }
    let record = state::read_record(client, &environment, context.polling).await;
    match state::read(client, &rendered, &record, context.polling).await {
        Ok(deployed) => Ok((environment, rendered, deployed)),
        Err(error) => Err(output.fail(&[aws_error("cannot read the deployed stacks", error)])),
    }
}

pub async fn status<C: CloudFormation>(
    client: &C,
    project_dir: &Path,
    args: &StatusArgs,
    output: &mut Output<'_>,
    context: &Context<'_>,
) -> ExitStatus {
    let (_, rendered, deployed) =
        match read(client, project_dir, &args.environment, output, context).await {
            Ok(read) => read,
            Err(status) => return status,
        };
    // In launch order, as the plan lists them.
    let order: Vec<&RenderedStack> = match crate::graph::Graph::new(&rendered).batches() {
        Ok(batches) => batches
            .iter()
            .flatten()
            .filter_map(|id| rendered.iter().find(|stack| &stack.spec.id == id))
            .collect(),
        Err(_) => rendered.iter().collect(),
    };
    let drift = if args.drift {
        let names: Vec<String> = deployed
            .stacks
            .iter()
            .filter(|(_, stack)| stack.status.is_complete() && !stack.status.needs_recreate())
            .map(|(name, _)| name.clone())
            .collect();
        match state::detect_drift(client, &names, context.polling).await {
            Ok(drift) => Some(drift),
            Err(error) => return output.fail(&[aws_error("cannot detect drift", error)]),
        }
    } else {
        None
    };
    let rows: Vec<[String; 3]> = order
        .iter()
        .map(|stack| match deployed.stacks.get(&stack.spec.name) {
            Some(current) => {
                let mut status = current.status.0.clone();
                if let Some(drift) = &drift {
                    match drift.get(&stack.spec.name).map(Vec::len) {
                        Some(0) => status.push_str(", IN_SYNC"),
                        Some(count) => status.push_str(&format!(", DRIFTED ({count})")),
                        None => status.push_str(", drift not checked"),
                    }
                }
                [
                    stack.spec.name.clone(),
                    status,
                    current.last_updated.clone().unwrap_or_default(),
                ]
            }
            None => [
                stack.spec.name.clone(),
                "NOT_DEPLOYED".into(),
                String::new(),
            ],
        })
        .collect();
    let header = ["STACK".to_string(), "STATUS".into(), "LAST UPDATED".into()];
    let width = |column: usize| {
        rows.iter()
            .chain(std::iter::once(&header))
            .map(|row| row[column].chars().count())
            .max()
            .unwrap_or_default()
    };
    let (name_width, status_width) = (width(0), width(1));
    let _ = writeln!(
        output.out,
        "{}",
        format!(
            "{:<name_width$}  {:<status_width$}  {}",
            header[0], header[1], header[2]
        )
        .trim_end()
    );
    for row in &rows {
        let line = format!(
            "{:<name_width$}  {}  {}",
            row[0],
            crate::view::status_cell(&row[1], status_width, output.color),
            row[2]
        );
        let _ = writeln!(output.out, "{}", line.trim_end());
    }
    for (name, drifts) in drift.iter().flatten() {
        for drifted in drifts {
            let _ = writeln!(
                output.out,
                "\n{name}: {} ({}) {}",
                drifted.logical_id,
                drifted.resource_type,
                if drifted.status == "DELETED" {
                    "was deleted outside CloudFormation"
                } else {
                    "was changed outside CloudFormation"
                }
            );
            for difference in &drifted.differences {
                let _ = writeln!(
                    output.out,
                    "  {}: {} (template) → {} (actual)",
                    difference.path.trim_start_matches('/').replace('/', "."),
                    difference.expected.as_deref().unwrap_or("(none)"),
                    difference.actual.as_deref().unwrap_or("(none)")
                );
            }
        }
    }
    if drift
        .as_ref()
        .is_some_and(|drift| drift.values().any(|drifts| !drifts.is_empty()))
    {
        let _ = writeln!(
            output.out,
            "\n`mlops-infra plan {} --refresh` shows what an apply does about it; `apply --revert-drift` puts it back.",
            args.environment
        );
    }
    ExitStatus::Success
}

pub async fn outputs<C: CloudFormation>(
    client: &C,
    project_dir: &Path,
    args: &OutputsArgs,
    output: &mut Output<'_>,
    context: &Context<'_>,
) -> ExitStatus {
    let (_, rendered, deployed) =
        match read(client, project_dir, &args.environment, output, context).await {
            Ok(read) => read,
            Err(status) => return status,
        };
    let all: BTreeMap<&str, &BTreeMap<String, String>> = rendered
        .iter()
        .filter_map(|stack| {
            deployed
                .stacks
                .get(&stack.spec.name)
                .map(|current| (stack.spec.id.as_str(), &current.outputs))
        })
        .collect();
    match args.output {
        OutputFormat::Json => {
            let _ = writeln!(
                output.out,
                "{}",
                serde_json::to_string_pretty(&all).unwrap_or_default()
            );
        }
        OutputFormat::Text => {
            for (stack, values) in &all {
                for (name, value) in *values {
                    let _ = writeln!(output.out, "{stack}.{name} = {value}");
                }
            }
        }
    }
    ExitStatus::Success
}

pub async fn destroy<C: CloudFormation>(
    client: &C,
    project_dir: &Path,
    args: &DestroyArgs,
    output: &mut Output<'_>,
    context: &Context<'_>,
) -> ExitStatus {
    let (environment, rendered) = match prepare(project_dir, &args.environment, output) {
        Ok(prepared) => prepared,
        Err(status) => return status,
    };
    if environment.protected && !args.force {
        return output.fail(&[Error::Usage {
            message: format!("`{}` is protected: destroy refuses it", environment.name),
            hint: Some("pass --force if the environment really is to go".into()),
        }]);
    }
    if let Err(error) = guard(client, &environment).await {
        return output.fail(&[error]);
    }
    let deployed = match state::read(client, &rendered, &Record::new(), context.polling).await {
        Ok(deployed) => deployed,
        Err(error) => return output.fail(&[aws_error("cannot read the deployed stacks", error)]),
    };
    let order: Vec<String> = match Graph::new(&rendered).batches() {
        Ok(batches) => batches.into_iter().rev().flatten().collect(),
        Err(_) => rendered
            .iter()
            .rev()
            .map(|stack| stack.spec.id.clone())
            .collect(),
    };
    let targets: Vec<&RenderedStack> = order
        .iter()
        .filter_map(|id| rendered.iter().find(|stack| &stack.spec.id == id))
        .filter(|stack| deployed.stacks.contains_key(&stack.spec.name))
        .collect();
    if targets.is_empty() {
        let _ = writeln!(
            output.err,
            "nothing to destroy: no stack of `{}` is deployed",
            environment.name
        );
        return ExitStatus::Success;
    }
    let names: Vec<&str> = targets
        .iter()
        .map(|stack| stack.spec.name.as_str())
        .collect();
    let _ = writeln!(
        output.err,
        "will delete, in this order: {}",
        names.join(", ")
    );
    // What CloudFormation leaves behind (DeletionPolicy: Retain): said before asking, since a
    // later apply cannot create resources of the same names while they exist.
    let kept: Vec<String> = targets
        .iter()
        .flat_map(|stack| {
            let template =
                crate::template::Template::parse(&deployed.stacks[&stack.spec.name].template_body)
                    .unwrap_or_default();
            template
                .resources
                .iter()
                .filter(|(_, resource)| resource.deletion_policy.as_deref() == Some("Retain"))
                .map(|(logical_id, resource)| {
                    format!(
                        "{}: {logical_id} ({})",
                        stack.spec.id, resource.resource_type
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    if !kept.is_empty() {
        let _ = writeln!(
            output.err,
            "will keep (DeletionPolicy: Retain), with their data: {}",
            kept.join(", ")
        );
        let _ = writeln!(
            output.err,
            "  a later apply cannot create resources of the same names while these exist: delete them yourself, or import them into the new stacks (CloudFormation resource import)"
        );
    }
    if !args.yes {
        let question = format!(
            "delete {} stack(s) of `{}`? type yes: ",
            targets.len(),
            environment.name
        );
        match context.confirm {
            Some(confirm) if confirm(&question) => {}
            Some(_) => {
                let _ = writeln!(output.err, "destroy cancelled: nothing was deleted");
                return ExitStatus::Failure;
            }
            None => {
                return output.fail(&[Error::Usage {
                    message: "destroy needs confirmation and nobody can answer here".into(),
                    hint: Some("pass --yes".into()),
                }]);
            }
        }
    }
    let mut failed = false;
    for stack in targets {
        let current = &deployed.stacks[&stack.spec.name];
        let retained: Vec<String> = crate::template::Template::parse(&current.template_body)
            .unwrap_or_default()
            .resources
            .iter()
            .filter(|(_, resource)| resource.deletion_policy.as_deref() == Some("Retain"))
            .map(|(id, resource)| format!("{id} ({})", resource.resource_type))
            .collect();
        if current.termination_protection {
            let _ = client
                .set_termination_protection(&stack.spec.name, false)
                .await;
        }
        let deleted =
            apply::delete_and_wait(client, &stack.spec.name, context.polling, context.interrupt)
                .await
                .map_err(|outcome| describe(&outcome));
        match deleted {
            Ok(()) => {
                let _ = writeln!(output.err, "deleted {}", stack.spec.name);
                if !retained.is_empty() {
                    let _ = writeln!(
                        output.err,
                        "  kept (DeletionPolicy Retain): {}",
                        retained.join(", ")
                    );
                }
            }
            Err(reason) => {
                failed = true;
                let _ = writeln!(output.err, "could not delete {}: {reason}", stack.spec.name);
                break;
            }
        }
    }
    if failed {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    }
}
