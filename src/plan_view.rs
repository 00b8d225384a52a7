//! A `Plan` as people and CI read it: coloured text for a terminal, Markdown for a pull-request
//! comment, JSON (the plan document itself, see docs/plan-format.md) for machines.

use std::fmt::Write;

use anstyle::{AnsiColor, Style};
use serde_json::Value;

use crate::plan::{Plan, Replacement, ResourceAction, ResourcePlan, StackAction, StackPlan};

/// Longest value shown inline; longer ones are cut with a note of their length.
const MAX_VALUE: usize = 120;

#[derive(Debug, Clone, Copy)]
struct Colors {
    add: Style,
    change: Style,
    remove: Style,
    danger: Style,
    dim: Style,
    strong: Style,
}

impl Colors {
    fn new(color: bool) -> Self {
        if !color {
            let plain = Style::new();
            return Colors {
                add: plain,
                change: plain,
                remove: plain,
                danger: plain,
                dim: plain,
                strong: plain,
            };
        }
        Colors {
            add: AnsiColor::Green.on_default(),
            change: AnsiColor::Yellow.on_default(),
            remove: AnsiColor::Red.on_default(),
            danger: AnsiColor::Red.on_default().bold(),
            dim: Style::new().dimmed(),
            strong: Style::new().bold(),
        }
    }
}

/// Counts for the summary line: stacks, and the resources in them.
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub unchanged: usize,
    pub blocked: usize,
    pub dangerous: usize,
    pub resources_added: usize,
    pub resources_changed: usize,
    /// Of the changed ones, those replaced (or possibly replaced).
    pub resources_replaced: usize,
    pub resources_removed: usize,
    /// Resources moving in from retired stacks (kept, not created).
    pub resources_moved: usize,
    /// Retired stacks resources move out of.
    pub retire: usize,
    /// Resources whose policies grant something new.
    pub broadened: usize,
}

pub fn summary(plan: &Plan) -> Summary {
    let count = |action: StackAction| {
        plan.stacks
            .iter()
            .filter(|stack| stack.action == action)
            .count()
    };
    let resources = || {
        plan.stacks
            .iter()
            .filter(|stack| !matches!(stack.action, StackAction::NoChange | StackAction::Blocked))
            .flat_map(|stack| &stack.resources)
    };
    let of = |action: ResourceAction| resources().filter(|r| r.action == action).count();
    Summary {
        create: count(StackAction::Create) + count(StackAction::Recreate),
        update: count(StackAction::Update),
        unchanged: count(StackAction::NoChange),
        blocked: count(StackAction::Blocked),
        dangerous: plan.dangerous().count(),
        resources_added: resources()
            .filter(|r| r.action == ResourceAction::Add && r.moved_from.is_none())
            .count(),
        resources_moved: plan.retired.iter().map(|retired| retired.moves.len()).sum(),
        retire: plan.retired.len(),
        resources_changed: of(ResourceAction::Modify),
        resources_replaced: resources()
            .filter(|r| r.action == ResourceAction::Modify && r.replacement != Replacement::No)
            .count(),
        resources_removed: of(ResourceAction::Remove),
        broadened: resources().filter(|r| r.broadening.is_some()).count(),
    }
}

/// `Resources: 3 to add, 1 to change (1 replaced), 0 to remove. Stacks: 1 to create, 1 to
/// update, 12 unchanged.` and what needs a reviewer's eye.
pub fn summary_line(plan: &Plan) -> String {
    let summary = summary(plan);
    let mut line = format!("Resources: {} to add", summary.resources_added);
    if summary.resources_moved > 0 {
        let _ = write!(line, ", {} to move", summary.resources_moved);
    }
    let _ = write!(line, ", {} to change", summary.resources_changed);
    if summary.resources_replaced > 0 {
        let _ = write!(line, " ({} replaced)", summary.resources_replaced);
    }
    let _ = write!(
        line,
        ", {} to remove. Stacks: {} to create, {} to update, {} unchanged",
        summary.resources_removed, summary.create, summary.update, summary.unchanged
    );
    if summary.blocked > 0 {
        let _ = write!(line, ", {} blocked", summary.blocked);
    }
    if summary.retire > 0 {
        let _ = write!(line, ", {} retired", summary.retire);
    }
    line.push('.');
    if summary.dangerous > 0 {
        let _ = write!(line, " {} dangerous change(s).", summary.dangerous);
    }
    if summary.broadened > 0 {
        let _ = write!(
            line,
            " {} resource(s) grant new permissions.",
            summary.broadened
        );
    }
    line
}

fn stack_marker(action: StackAction) -> (&'static str, &'static str) {
    match action {
        StackAction::Create => ("+", "create"),
        StackAction::Recreate => ("-/+", "delete and create again"),
        StackAction::Update => ("~", "update"),
        StackAction::NoChange => ("=", "no changes"),
        StackAction::Blocked => ("!", "blocked"),
    }
}

fn resource_marker(resource: &ResourcePlan) -> &'static str {
    if resource.moved_from.is_some() {
        return ">";
    }
    match (resource.action, resource.replacement) {
        (ResourceAction::Add, _) => "+",
        (ResourceAction::Remove, _) => "-",
        (ResourceAction::Modify, Replacement::Yes) => "-/+",
        (ResourceAction::Modify, Replacement::Conditional) => "~?",
        (ResourceAction::Modify, Replacement::No) => "~",
    }
}

/// One property change on a line; an added or removed object too long for a line is shown
/// whole, as indented JSON below its path, so nothing of what changes is cut.
fn write_change(out: &mut String, indent: &str, change: &crate::plan::diff::PropertyChange) {
    let whole = match (&change.before, &change.after) {
        (None, Some(value)) => Some(("added", value)),
        (Some(value), None) => Some(("removed", value)),
        _ => None,
    }
    .filter(|(_, value)| value.is_object() || value.is_array())
    .filter(|(_, value)| value.to_string().chars().count() > MAX_VALUE);
    match whole {
        Some((what, value)) => {
            let _ = writeln!(out, "{indent}{}: {what}", change.path);
            let pretty = serde_json::to_string_pretty(value).unwrap_or_default();
            for line in pretty.lines() {
                let _ = writeln!(out, "{indent}    {line}");
            }
        }
        None => {
            let (before, after) = match (&change.before, &change.after) {
                (Some(Value::String(before)), Some(Value::String(after))) => {
                    changed_part(before, after)
                }
                // Added or removed text is shown whole: all of it is the change.
                (None, Some(Value::String(text))) => ("(none)".into(), format!("{text:?}")),
                (Some(Value::String(text)), None) => (format!("{text:?}"), "(none)".into()),
                (before, after) => (short(before), short(after)),
            };
            let _ = writeln!(out, "{indent}{}: {before} → {after}", change.path);
        }
    }
}

/// Two long strings as the part that differs, with a little context either side (`…` marks
/// what is left out), so the change is never cut away; short strings whole.
fn changed_part(before: &str, after: &str) -> (String, String) {
    const CONTEXT: usize = 30;
    let (old, new): (Vec<char>, Vec<char>) = (before.chars().collect(), after.chars().collect());
    if old.len() <= MAX_VALUE && new.len() <= MAX_VALUE {
        return (format!("{before:?}"), format!("{after:?}"));
    }
    let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let start = prefix.saturating_sub(CONTEXT);
    let side = |chars: &[char]| {
        let end = (chars.len() - suffix + CONTEXT).min(chars.len());
        let text: String = chars[start..end].iter().collect();
        let quoted = format!("{text:?}");
        let quoted = &quoted[1..quoted.len() - 1];
        format!(
            "\"{}{quoted}{}\"",
            if start > 0 { "…" } else { "" },
            if end < chars.len() { "…" } else { "" }
        )
    };
    (side(&old), side(&new))
}

fn short(value: &Option<serde_json::Value>) -> String {
    match value {
        None => "(none)".into(),
        Some(serde_json::Value::String(text)) => cut(&format!("{text:?}")),
        Some(other) => cut(&other.to_string()),
    }
}

fn cut(text: &str) -> String {
    if text.chars().count() <= MAX_VALUE {
        text.to_string()
    } else {
        let head: String = text.chars().take(MAX_VALUE).collect();
        format!("{head}… ({} characters)", text.chars().count())
    }
}

/// The terminal view. With `color` off it is plain text, fit for logs and snapshots.
pub fn text(plan: &Plan, color: bool) -> String {
    let colors = Colors::new(color);
    let mut out = String::new();
    let strong = colors.strong;
    let _ = writeln!(
        out,
        "{strong}Plan for `{}`{strong:#} (account {}, region {}{})\n",
        plan.environment,
        plan.account_id,
        plan.region,
        if plan.protected { ", protected" } else { "" }
    );
    for retired in &plan.retired {
        write_retired(&mut out, retired, &colors);
    }
    for stack in &plan.stacks {
        write_stack(&mut out, stack, &colors);
    }
    let _ = writeln!(out, "\n{}", summary_line(plan));
    if let Some(line) = drift_summary(plan) {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// The plan's drift in one line, when drift detection ran.
pub fn drift_summary(plan: &Plan) -> Option<String> {
    if !plan.drift_checked {
        return None;
    }
    let drifted: Vec<&StackPlan> = plan
        .stacks
        .iter()
        .filter(|stack| !stack.drift.is_empty())
        .collect();
    let resources: usize = drifted.iter().map(|stack| stack.drift.len()).sum();
    Some(if resources == 0 {
        "Drift: none; every deployed resource matches its template.".to_string()
    } else {
        format!(
            "Drift: {resources} resource(s) in {} stack(s) changed outside CloudFormation{}.",
            drifted.len(),
            if plan.stacks.iter().any(|stack| stack.revert_drift) {
                "; this apply puts them back"
            } else {
                "; `apply --revert-drift` puts them back"
            }
        )
    })
}

/// A change set's pre-deployment validation results, one line each.
fn validation_lines(stack: &StackPlan) -> Vec<String> {
    stack
        .validations
        .iter()
        .map(|validation| {
            let what = match (validation.status.as_str(), validation.mode.as_str()) {
                ("FAILED", "WARN") => "validation warning",
                ("FAILED", _) => "validation failed",
                _ => "validation skipped",
            };
            let at = validation
                .path
                .as_deref()
                .map(|path| format!(" at {path}"))
                .unwrap_or_default();
            let reason = validation
                .reason
                .as_deref()
                .map(|reason| format!(": {reason}"))
                .unwrap_or_default();
            format!("! {what}: {}{at}{reason}", validation.name)
        })
        .collect()
}

/// What drift detection found in the stack, and what this apply does about it.
fn drift_lines(stack: &StackPlan) -> Vec<String> {
    let mut lines = Vec::new();
    for drifted in &stack.drift {
        let drift = &drifted.drift;
        let id = &drift.logical_id;
        if drift.status == "DELETED" {
            lines.push(format!(
                "! drift: {id} ({}) was deleted outside CloudFormation; {}",
                drift.resource_type,
                if stack.revert_drift {
                    "this apply creates it again"
                } else {
                    "`apply --revert-drift` creates it again"
                }
            ));
            continue;
        }
        let shown = |value: &Option<String>| value.as_deref().map_or("(none)".to_string(), cut);
        for difference in &drift.differences {
            let property = difference.path.trim_start_matches('/').replace('/', ".");
            let (expected, actual) = (shown(&difference.expected), shown(&difference.actual));
            let consequence = match (stack.revert_drift, drifted.touched) {
                (true, _) => format!("this apply puts it back to {expected}"),
                (false, true) => format!(
                    "warning: this apply updates {id} and writes the template's {expected} over it (`--revert-drift` to do so for all drift)"
                ),
                (false, false) => format!(
                    "untouched by this apply (template: {expected}; `--revert-drift` puts it back)"
                ),
            };
            let marker = if !stack.revert_drift && drifted.touched {
                "!"
            } else {
                "~"
            };
            lines.push(format!(
                "{marker} drift: {id} {property} was changed outside CloudFormation to {actual}; {consequence}"
            ));
        }
    }
    lines
}

/// A stack the layout no longer has: what moves out of it, where, and what becomes of it.
fn write_retired(out: &mut String, retired: &crate::plan::moves::RetiredStack, colors: &Colors) {
    let style = colors.change;
    let refactors = retired.batches().len();
    let _ = writeln!(
        out,
        "{style}> {}{style:#} (retired: {} resource(s) move out by stack refactoring, {refactors} refactor(s) of at most {} stacks)",
        retired.name,
        retired.moves.len(),
        crate::plan::moves::MAX_REFACTOR_STACKS
    );
    if let Some(reason) = &retired.blocked {
        let danger = colors.danger;
        let _ = writeln!(out, "    {danger}blocked{danger:#}: {reason}");
    }
    for found in &retired.moves {
        let _ = writeln!(
            out,
            "    {style}> {}{style:#}  {}  to {} as {}  ({} {}: kept, not replaced)",
            found.from_logical_id,
            found.resource_type,
            found.to_stack,
            found.to_logical_id,
            crate::plan::NAMED_TYPES
                .iter()
                .find(|(resource_type, _, _)| *resource_type == found.resource_type)
                .map_or("resource", |(_, _, noun)| *noun),
            found.name
        );
    }
    if retired.emptied() {
        let _ = writeln!(
            out,
            "    then the empty stack is deleted (a placeholder keeps it valid until then)"
        );
    } else {
        let _ = writeln!(
            out,
            "    the stack stays: {} no current stack declares ({})",
            if retired.left.len() == 1 {
                "a resource"
            } else {
                "resources"
            },
            retired.left.join(", ")
        );
    }
}

fn write_stack(out: &mut String, stack: &StackPlan, colors: &Colors) {
    let (marker, label) = stack_marker(stack.action);
    let style = match stack.action {
        StackAction::Create => colors.add,
        StackAction::Update => colors.change,
        StackAction::Recreate | StackAction::Blocked => colors.remove,
        StackAction::NoChange => colors.dim,
    };
    let _ = writeln!(out, "{style}{marker} {}{style:#} ({label})", stack.name);
    if let Some(note) = &stack.note {
        let _ = writeln!(out, "    {note}");
    }
    for line in validation_lines(stack) {
        let _ = writeln!(out, "    {line}");
    }
    for line in drift_lines(stack) {
        let _ = writeln!(out, "    {line}");
    }
    if stack.action == StackAction::NoChange || stack.action == StackAction::Blocked {
        return;
    }
    let _ = writeln!(out, "    deployed by {}", deployer(stack));
    if let Some(rollback) = &stack.rollback {
        let names: Vec<&str> = rollback
            .alarm_arns
            .iter()
            .map(|arn| arn.rsplit(':').next().unwrap_or(arn))
            .collect();
        let _ = writeln!(
            out,
            "    CloudFormation rolls the update back if {} fires during it or within {} min after",
            names.join(" or "),
            rollback.monitoring_minutes
        );
    }
    for upload in &stack.uploads {
        let _ = writeln!(out, "    uploads {upload}");
    }
    for parameter in &stack.parameters {
        let after = match parameter.value.as_deref() {
            None => "(known after apply)".to_string(),
            Some("") => "(empty)".to_string(),
            Some(value) => value.to_string(),
        };
        if parameter.value.is_some() && parameter.value == parameter.before {
            continue;
        }
        let source = parameter
            .from_output
            .as_deref()
            .or(parameter.from_registry.as_deref())
            .map(|source| format!(" ← {source}"))
            .unwrap_or_default();
        match &parameter.before {
            Some(before) => {
                let before = if before.is_empty() {
                    "(empty)".to_string()
                } else {
                    cut(before)
                };
                let _ = writeln!(
                    out,
                    "    parameter {}: {before} → {after}{source}",
                    parameter.name
                );
            }
            None => {
                let _ = writeln!(out, "    parameter {}: {after}{source}", parameter.name);
            }
        }
    }
    for change in &stack.tag_changes {
        let _ = writeln!(
            out,
            "    tag {}: {} → {}",
            change.name,
            change.before.as_deref().unwrap_or("(none)"),
            change.after.as_deref().unwrap_or("(none)")
        );
    }
    if !stack.other_changes.is_empty() {
        let _ = writeln!(
            out,
            "    template sections changed: {}",
            stack.other_changes.join(", ")
        );
    }
    for resource in &stack.resources {
        write_resource(out, stack, resource, colors);
    }
}

fn write_resource(out: &mut String, stack: &StackPlan, resource: &ResourcePlan, colors: &Colors) {
    let marker = resource_marker(resource);
    let style = match resource.action {
        ResourceAction::Add => colors.add,
        ResourceAction::Remove => colors.remove,
        ResourceAction::Modify if resource.replacement == Replacement::Yes => colors.remove,
        ResourceAction::Modify => colors.change,
    };
    let mut line = format!(
        "    {style}{marker} {}{style:#}  {}",
        resource.logical_id, resource.resource_type
    );
    if let Some(from) = &resource.moved_from {
        let _ = write!(
            line,
            "  moves in from {from} (stack refactoring: kept, not created)"
        );
    }
    if resource.replacement == Replacement::Yes {
        let reason = if resource.replaced_by.is_empty() {
            String::new()
        } else {
            format!(" ({})", resource.replaced_by.join(", "))
        };
        let _ = write!(line, "  replaces{reason}");
    } else if resource.replacement == Replacement::Conditional {
        line.push_str("  may replace");
    }
    if resource.dangerous {
        let danger = colors.danger;
        let _ = write!(line, "  {danger}DANGEROUS{danger:#}");
    }
    let _ = writeln!(out, "{line}");
    if resource.dangerous {
        let what = if resource.action == ResourceAction::Remove {
            "deletes"
        } else {
            "replaces"
        };
        let _ = writeln!(
            out,
            "        {what} a data-bearing resource; apply refuses unless `--allow-replace {}`",
            resource.logical_id
        );
    }
    for note in &resource.notes {
        let _ = writeln!(out, "        {note}");
    }
    if stack.action == StackAction::Create || stack.action == StackAction::Recreate {
        return;
    }
    for change in &resource.changes {
        // A pipeline's definition changes are shown step by step below.
        if resource.steps.is_empty()
            || !change
                .path
                .starts_with("Properties.PipelineDefinition.PipelineDefinitionBody")
        {
            write_change(out, "        ", change);
        }
    }
    for step in &resource.steps {
        let _ = writeln!(out, "        step {} ({})", step.name, step.action);
        for change in &step.changes {
            write_change(out, "            ", change);
        }
    }
    if let Some(broadening) = &resource.broadening {
        let danger = colors.danger;
        let _ = writeln!(out, "        {danger}new grants{danger:#}:");
        for line in grant_table(&broadening.grants) {
            let _ = writeln!(out, "          {line}");
        }
    }
}

/// New grants as a table of principal, action and resource columns; a cell with several
/// entries takes a line each.
pub fn grant_table(grants: &[crate::plan::iam::Grant]) -> Vec<String> {
    let header = ["principal", "action", "resource"];
    let width = |pick: fn(&crate::plan::iam::Grant) -> &Vec<String>, title: &str| {
        grants
            .iter()
            .flat_map(|grant| pick(grant).iter().map(|item| item.chars().count()))
            .chain([title.chars().count()])
            .max()
            .unwrap_or_default()
    };
    let (principal_width, action_width) = (
        width(|g| &g.principals, header[0]),
        width(|g| &g.actions, header[1]),
    );
    let row = |principal: &str, action: &str, resource: &str| {
        format!("{principal:<principal_width$}  {action:<action_width$}  {resource}")
            .trim_end()
            .to_string()
    };
    let mut lines = vec![row(header[0], header[1], header[2])];
    for grant in grants {
        let height = grant
            .principals
            .len()
            .max(grant.actions.len())
            .max(grant.resources.len());
        for index in 0..height {
            let cell = |items: &Vec<String>| items.get(index).cloned().unwrap_or_default();
            lines.push(row(
                &cell(&grant.principals),
                &cell(&grant.actions),
                &cell(&grant.resources),
            ));
        }
    }
    lines
}

/// Who CloudFormation acts as for the stack: the service role, or the caller for the stacks
/// that create that role.
fn deployer(stack: &StackPlan) -> String {
    match &stack.deploy_role {
        Some(role) => format!("role {}", role.rsplit('/').next().unwrap_or(role)),
        None => "the caller (bootstrap: these stacks create the CloudFormation role)".into(),
    }
}

/// The Markdown view, for a pull-request comment: changed stacks only, unchanged ones counted.
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### mlops-infra plan: `{}` (account {}, {}{})\n",
        plan.environment,
        plan.account_id,
        plan.region,
        if plan.protected { ", protected" } else { "" }
    );
    let _ = writeln!(out, "**{}**\n", summary_line(plan));
    let shown: Vec<&StackPlan> = plan
        .stacks
        .iter()
        .filter(|stack| stack.action != StackAction::NoChange)
        .collect();
    if !shown.is_empty() {
        let _ = writeln!(out, "| stack | action | resources changed | dangerous |");
        let _ = writeln!(out, "|---|---|---|---|");
    }
    for stack in &shown {
        let (_, label) = stack_marker(stack.action);
        let dangerous = stack
            .resources
            .iter()
            .filter(|r| r.dangerous)
            .map(|r| format!("`{}`", r.logical_id))
            .collect::<Vec<_>>();
        let _ = writeln!(
            out,
            "| `{}` | {label} | {} | {} |",
            stack.name,
            stack.resources.len(),
            if dangerous.is_empty() {
                "".to_string()
            } else {
                format!(":warning: {}", dangerous.join(", "))
            }
        );
    }
    for retired in &plan.retired {
        let _ = writeln!(
            out,
            "| `{}` | retire: move out{} | {} moved | |",
            retired.name,
            if retired.emptied() {
                ", then delete"
            } else {
                ""
            },
            retired.moves.len()
        );
    }
    let unchanged = plan.stacks.len() - shown.len();
    if unchanged > 0 {
        let _ = writeln!(out, "\n{unchanged} stack(s) unchanged.");
    }
    let changed: Vec<&StackPlan> = plan
        .stacks
        .iter()
        .filter(|stack| stack.action != StackAction::NoChange)
        .collect();
    if !changed.is_empty() {
        let _ = writeln!(out, "\n<details><summary>Details</summary>\n\n```diff");
        for stack in changed {
            let mut text = String::new();
            write_stack(&mut text, stack, &Colors::new(false));
            for line in text.lines() {
                let trimmed = line.trim_start();
                let prefix = if trimmed.starts_with('+') {
                    "+"
                } else if trimmed.starts_with('-') || trimmed.starts_with('!') {
                    "-"
                } else if trimmed.starts_with('~') {
                    "!"
                } else {
                    " "
                };
                let _ = writeln!(out, "{prefix} {line}");
            }
        }
        let _ = writeln!(out, "```\n\n</details>");
    }
    write_markdown_grants(&mut out, plan);
    write_markdown_checks(&mut out, plan);
    out
}

/// Drift and validation results as a list a reviewer sees without unfolding the details.
fn write_markdown_checks(out: &mut String, plan: &Plan) {
    let lines: Vec<(String, String)> = plan
        .stacks
        .iter()
        .flat_map(|stack| {
            validation_lines(stack)
                .into_iter()
                .chain(drift_lines(stack))
                .map(move |line| (stack.name.clone(), line))
        })
        .collect();
    if let Some(summary) = drift_summary(plan) {
        let _ = writeln!(out, "\n{summary}");
    }
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n#### Drift and validation\n");
    for (stack, line) in lines {
        let line = line.trim_start_matches(['!', '~', ' ']);
        let _ = writeln!(out, "- `{stack}`: {line}");
    }
}

/// New grants as a Markdown table, outside the folded details: they need a reviewer's eye.
fn write_markdown_grants(out: &mut String, plan: &Plan) {
    let rows: Vec<(&StackPlan, &ResourcePlan, &crate::plan::iam::Grant)> = plan
        .stacks
        .iter()
        .flat_map(|stack| {
            stack.resources.iter().flat_map(move |resource| {
                resource
                    .broadening
                    .iter()
                    .flat_map(|broadening| &broadening.grants)
                    .map(move |grant| (stack, resource, grant))
            })
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n#### New grants\n\n| stack | resource | principal | actions | resources |\n|---|---|---|---|---|"
    );
    let cell = |items: &[String]| {
        items
            .iter()
            .map(|item| format!("`{item}`"))
            .collect::<Vec<_>>()
            .join("<br>")
    };
    for (stack, resource, grant) in rows {
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {} | {} | {} |",
            stack.id,
            resource.logical_id,
            cell(&grant.principals),
            cell(&grant.actions),
            cell(&grant.resources)
        );
    }
}

/// The JSON view: the plan document, pretty-printed, with the summary's counts as `totals`.
pub fn json(plan: &Plan) -> String {
    let summary = summary(plan);
    let mut document = serde_json::to_value(plan).unwrap_or_default();
    if let Some(map) = document.as_object_mut() {
        map.insert(
            "totals".into(),
            serde_json::json!({
                "stacks": {
                    "create": summary.create,
                    "update": summary.update,
                    "unchanged": summary.unchanged,
                    "blocked": summary.blocked,
                },
                "resources": {
                    "add": summary.resources_added,
                    "change": summary.resources_changed,
                    "replace": summary.resources_replaced,
                    "remove": summary.resources_removed,
                },
                "dangerous": summary.dangerous,
                "broadened": summary.broadened,
            }),
        );
    }
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}
