//! The commands: each loads, renders and checks through the core, then hands results to `view`.
//! Data goes to `out` (stdout), everything else to `err` (stderr).

pub mod acceptance;
pub mod deploy;
pub mod identify;
pub mod monitor;
pub mod operate;
pub mod registry;
pub mod review;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::{OutputFormat, RenderArgs, TemplateFormat, ValidateArgs};
use crate::config::{self, Environment};
use crate::error::{Error, ExitStatus};
use crate::graph::Graph;
use crate::render::{self, RenderedStack};
use crate::validate::{self, Severity};
use crate::view::{self, Palette, StackSummary, ValidationReport};

/// Where a command writes, and how.
pub struct Output<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    pub palette: Palette,
    /// Colour for data written to stdout (the text plan).
    pub color: bool,
    /// Progress redrawn in place (stderr is a terminal) rather than one line per event.
    pub live: bool,
    /// The terminal's width now (read at every redraw, so a resized window is followed);
    /// `None` when unknown.
    pub width: fn() -> Option<usize>,
    /// The terminal's height in lines now; `None` when unknown.
    pub height: fn() -> Option<usize>,
    /// stdout is a terminal: a person reads it, so machine-readable results (apply's JSON
    /// report) are left out unless asked for.
    pub data_to_terminal: bool,
    /// `-v` count: 1 adds what was loaded and the launch order.
    pub verbose: u8,
}

impl Output<'_> {
    /// Prints errors to stderr; returns the failure status.
    pub fn fail(&mut self, errors: &[Error]) -> ExitStatus {
        for error in errors {
            let _ = view::write_error(self.err, &self.palette, error);
        }
        ExitStatus::Failure
    }
}

/// Loads an environment for a command that talks to AWS; prints the file's errors on failure.
pub(crate) fn load_environment(
    project_dir: &Path,
    name: &str,
    output: &mut Output,
) -> Result<Environment, ExitStatus> {
    config::load(project_dir, name)
        .map_err(|errors| output.fail(&errors.into_iter().map(Error::Input).collect::<Vec<_>>()))
}

/// The error for credentials of another account than the environment's.
pub(crate) fn wrong_account(account: &str, environment: &Environment) -> Error {
    Error::Usage {
        message: format!(
            "the credentials in use belong to account {account}, but environment `{}` lives in account {}",
            environment.name, environment.account_id
        ),
        hint: Some(match &environment.profile {
            Some(profile) => format!(
                "environment `{}` uses profile `{profile}`: check that it reaches account {}",
                environment.name, environment.account_id
            ),
            None => "switch profile (AWS_PROFILE) or credentials to the environment's account, or set `profile` in the environment file".into(),
        }),
    }
}

/// Loads and renders an environment, or the errors that stopped it.
fn load_and_render(
    project_dir: &Path,
    name: &str,
) -> Result<(Environment, Vec<RenderedStack>), Vec<Error>> {
    let environment = config::load(project_dir, name)
        .map_err(|errors| errors.into_iter().map(Error::Input).collect::<Vec<_>>())?;
    let stacks = render::render(project_dir, &environment)?;
    Ok((environment, stacks))
}

pub fn render(project_dir: &Path, args: &RenderArgs, output: &mut Output) -> ExitStatus {
    let (environment, stacks) = match load_and_render(project_dir, &args.environment) {
        Ok(loaded) => loaded,
        Err(errors) => return output.fail(&errors),
    };
    let directory = args
        .out
        .clone()
        .unwrap_or_else(|| project_dir.join("build").join(&environment.name));
    if let Err(source) = std::fs::create_dir_all(&directory) {
        return output.fail(&[Error::io("create", &directory, source)]);
    }
    let extension = match args.format {
        TemplateFormat::Yaml => "yaml",
        TemplateFormat::Json => "json",
    };
    let mut written: Vec<(PathBuf, usize)> = Vec::new();
    for stack in &stacks {
        let path = directory.join(format!("{}.{extension}", stack.spec.id));
        let body = match args.format {
            TemplateFormat::Yaml => stack.body.clone(),
            TemplateFormat::Json => stack.template.to_json_string(),
        };
        if let Err(source) = std::fs::write(&path, &body) {
            return output.fail(&[Error::io("write", &path, source)]);
        }
        written.push((path, body.len()));
    }
    let _ = writeln!(
        output.err,
        "rendered {} stack(s) of `{}` into {}",
        stacks.len(),
        environment.name,
        directory.display()
    );
    for ((path, bytes), stack) in written.iter().zip(&stacks) {
        let _ = writeln!(
            output.err,
            "  {:<40} {:>4} resources {:>7} bytes  {}",
            stack.spec.name,
            stack.template.resources.len(),
            bytes,
            path.display()
        );
    }
    ExitStatus::Success
}

pub fn validate(project_dir: &Path, args: &ValidateArgs, output: &mut Output) -> ExitStatus {
    let (environment, stacks) = match load_and_render(project_dir, &args.environment) {
        Ok(loaded) => loaded,
        Err(errors) => return output.fail(&errors),
    };
    let mut diagnostics = validate::check_templates(&stacks);
    diagnostics.extend(validate::check_routers(&environment));
    let started = std::time::Instant::now();
    let (permissions, coverage) = crate::iam::checked(&environment, &stacks);
    let analysis_time = started.elapsed();
    diagnostics.extend(permissions);
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    match args.output {
        OutputFormat::Json => {
            let graph = Graph::new(&stacks);
            let report = ValidationReport {
                environment: &environment.name,
                account_id: &environment.account_id,
                region: &environment.region,
                valid: errors == 0,
                stacks: stacks
                    .iter()
                    .enumerate()
                    .map(|(index, stack)| StackSummary {
                        id: stack.spec.id.clone(),
                        name: stack.spec.name.clone(),
                        resources: stack.template.resources.len(),
                        bytes: stack.body.len(),
                        depends_on: graph.dependencies[index]
                            .iter()
                            .map(|&d| graph.ids[d].clone())
                            .collect(),
                    })
                    .collect(),
                diagnostics: &diagnostics,
            };
            let text = serde_json::to_string_pretty(&report).unwrap_or_default();
            let _ = writeln!(output.out, "{text}");
        }
        OutputFormat::Text => {
            if output.verbose > 0 {
                let _ = writeln!(
                    output.err,
                    "environment `{}`: account {}, region {}, {} model(s)",
                    environment.name,
                    environment.account_id,
                    environment.region,
                    environment.models.len()
                );
                if let Ok(batches) = Graph::new(&stacks).batches() {
                    let order: Vec<String> = batches.iter().map(|batch| batch.join(", ")).collect();
                    let _ = writeln!(output.err, "launch order: {}", order.join(" → "));
                }
                let _ = writeln!(
                    output.err,
                    "permissions: {} role(s), {} requirement(s) checked in {:.1} ms",
                    coverage.roles,
                    coverage.requirements,
                    analysis_time.as_secs_f64() * 1000.0
                );
            }
            for diagnostic in &diagnostics {
                let _ = view::write_diagnostic(output.err, &output.palette, diagnostic);
            }
            let resources: usize = stacks
                .iter()
                .map(|stack| stack.template.resources.len())
                .sum();
            let notes = diagnostics.len() - errors;
            let _ = writeln!(
                output.err,
                "validated `{}`: {} stack(s), {resources} resource(s), {errors} error(s), {notes} note(s)",
                environment.name,
                stacks.len(),
            );
        }
    }
    if errors == 0 {
        ExitStatus::Success
    } else {
        if args.output == OutputFormat::Text {
            let _ = view::write_error(
                output.err,
                &output.palette,
                &Error::Invalid {
                    environment: environment.name.clone(),
                    count: errors,
                },
            );
        }
        ExitStatus::Failure
    }
}
