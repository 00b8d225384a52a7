//! Turns errors and diagnostics into what users read: text (optionally coloured) or JSON.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use crate::error::Error;
use crate::validate::{Diagnostic, Severity};

/// Colours, or none.
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    pub error: Style,
    pub note: Style,
    pub hint: Style,
    pub strong: Style,
    /// Colour is on: status words elsewhere (the live view) are coloured too.
    pub enabled: bool,
}

impl Palette {
    pub fn new(color: bool) -> Self {
        if color {
            Palette {
                error: AnsiColor::Red.on_default().bold(),
                note: AnsiColor::Cyan.on_default().bold(),
                hint: AnsiColor::Green.on_default(),
                strong: Style::new().bold(),
                enabled: true,
            }
        } else {
            Palette {
                error: Style::new(),
                note: Style::new(),
                hint: Style::new(),
                strong: Style::new(),
                enabled: false,
            }
        }
    }
}

/// The colour of a status word as people read it: green done, red failed or refused, yellow
/// under way or waiting, dim absent; nothing when colour is off.
pub fn status_style(status: &str, color: bool) -> Style {
    if !color {
        return Style::new();
    }
    let upper = status.to_ascii_uppercase();
    if upper.contains("FAILED")
        || upper.contains("ROLLBACK")
        || upper == "REJECTED"
        || upper == "PROBLEM"
    {
        AnsiColor::Red.on_default()
    } else if upper.contains("IN_PROGRESS") || upper.starts_with("PENDING") || upper == "WARNING" {
        AnsiColor::Yellow.on_default()
    } else if upper.ends_with("COMPLETE")
        || upper == "APPROVED"
        || upper == "OK"
        || upper == "PASSED"
    {
        AnsiColor::Green.on_default()
    } else {
        Style::new().dimmed()
    }
}

/// `text` padded to `width`, then coloured as its status.
pub fn status_cell(text: &str, width: usize, color: bool) -> String {
    let style = status_style(text, color);
    format!("{style}{text:<width$}{style:#}")
}

pub fn write_error(out: &mut dyn Write, palette: &Palette, error: &Error) -> io::Result<()> {
    let style = palette.error;
    writeln!(out, "{style}error{style:#}: {error}")?;
    if let Some(hint) = error.hint() {
        write_hint(out, palette, hint)?;
    }
    Ok(())
}

fn write_hint(out: &mut dyn Write, palette: &Palette, hint: &str) -> io::Result<()> {
    let style = palette.hint;
    writeln!(out, "  {style}hint{style:#}: {hint}")
}

pub fn write_diagnostic(
    out: &mut dyn Write,
    palette: &Palette,
    diagnostic: &Diagnostic,
) -> io::Result<()> {
    let (label, style) = match diagnostic.severity {
        Severity::Error => ("error", palette.error),
        Severity::Note => ("note", palette.note),
    };
    let strong = palette.strong;
    write!(
        out,
        "{style}{label}{style:#}: {strong}{}{strong:#}",
        diagnostic.stack
    )?;
    if let Some(location) = &diagnostic.location {
        write!(out, " {location}")?;
    }
    if let Some(path) = &diagnostic.path {
        write!(out, " › {path}")?;
    }
    writeln!(out, ": {}", diagnostic.message)?;
    if let Some(hint) = &diagnostic.hint {
        write_hint(out, palette, hint)?;
    }
    Ok(())
}

/// The JSON document `validate --output json` prints.
#[derive(Debug, Serialize)]
pub struct ValidationReport<'a> {
    pub environment: &'a str,
    pub account_id: &'a str,
    pub region: &'a str,
    pub valid: bool,
    pub stacks: Vec<StackSummary>,
    pub diagnostics: &'a [Diagnostic],
}

#[derive(Debug, Serialize)]
pub struct StackSummary {
    pub id: String,
    pub name: String,
    pub resources: usize,
    pub bytes: usize,
    pub depends_on: Vec<String>,
}
