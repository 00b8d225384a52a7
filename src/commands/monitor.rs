//! `monitor`: the latest monitoring report of each model's endpoint (what `steps/monitor.py`
//! wrote to `s3://<artifacts>/monitoring/<model>/latest.json`), as a table or JSON.

use std::path::Path;

use serde_json::Value;

use super::registry::{guard, selected};
use super::{Output, load_environment};
use crate::aws::platform::Platform;
use crate::cli::{MonitorArgs, OutputFormat};
use crate::config::Model;
use crate::error::ExitStatus;

use super::deploy::aws_error;

/// Where a model's latest report is.
pub fn latest_report_uri(environment: &crate::config::Environment, model: &Model) -> String {
    let monitoring = crate::pipeline::config::monitoring(environment, model);
    format!("{}latest.json", monitoring.report_uri)
}

pub async fn monitor<P: Platform>(
    platform: &P,
    project_dir: &Path,
    args: &MonitorArgs,
    output: &mut Output<'_>,
) -> ExitStatus {
    let environment = match load_environment(project_dir, &args.environment, output) {
        Ok(environment) => environment,
        Err(status) => return status,
    };
    let chosen = match selected(&environment, args.model.as_deref()) {
        Ok(models) => models,
        Err(error) => return output.fail(&[error]),
    };
    if let Err(error) = guard(platform, &environment).await {
        return output.fail(&[error]);
    }
    let mut reports = serde_json::Map::new();
    for model in chosen {
        let uri = latest_report_uri(&environment, model);
        let report = match platform.read_object(&uri).await {
            Ok(Some(text)) => serde_json::from_str(&text).unwrap_or(Value::Null),
            Ok(None) => Value::Null,
            Err(error) => return output.fail(&[aws_error(&format!("cannot read {uri}"), error)]),
        };
        reports.insert(model.name.clone(), report);
    }
    let text = match args.output {
        OutputFormat::Json => {
            let mut text = serde_json::to_string_pretty(&reports).unwrap_or_default();
            text.push('\n');
            text
        }
        OutputFormat::Text => table(&reports, output.color),
    };
    let _ = write!(output.out, "{text}");
    ExitStatus::Success
}

/// One row per model: the window, traffic, confidence, low-confidence share and drift.
fn table(reports: &serde_json::Map<String, Value>, color: bool) -> String {
    let width = reports.keys().map(String::len).max().unwrap_or(5).max(5);
    let mut out = format!(
        "{:<width$}  {:<20}  {:>8}  {:>9}  {:>9}  {:<16}  NOTE\n",
        "MODEL", "WINDOW END", "REQUESTS", "MEAN CONF", "LOW CONF", "DRIFT"
    );
    for (model, report) in reports {
        if report.is_null() {
            let line = format!(
                "{model:<width$}  {:<20}  {:>8}  {:>9}  {:>9}  {:<16}  no report yet: the monitoring pipeline runs on `monitoring.schedule` once the endpoint serves a package",
                "-", "-", "-", "-", "-"
            );
            out.push_str(&line);
            out.push('\n');
            continue;
        }
        let number = |pointer: &str, digits: usize| {
            report
                .pointer(pointer)
                .and_then(Value::as_f64)
                .map(|value| format!("{value:.digits$}"))
                .unwrap_or_else(|| "-".into())
        };
        let drift = report
            .pointer("/drift/status")
            .and_then(Value::as_str)
            .unwrap_or("-");
        let psi = report
            .pointer("/drift/psi")
            .and_then(Value::as_f64)
            .map(|psi| format!("{drift} ({psi:.3})"))
            .unwrap_or_else(|| drift.to_string());
        let status_word = match drift {
            "drift" => "PROBLEM",
            "ok" => "OK",
            _ => "",
        };
        let mut note = Vec::new();
        if let Some(package) = report.get("package").and_then(Value::as_str) {
            note.push(format!(
                "version {}",
                package.rsplit('/').next().unwrap_or(package)
            ));
        } else if report.get("package").is_some() {
            note.push("no package served".into());
        }
        if let Some(count) = report
            .pointer("/malformed/count")
            .and_then(Value::as_u64)
            .filter(|count| *count > 0)
        {
            note.push(format!("{count} malformed record(s)"));
        }
        let drift_cell = if status_word.is_empty() {
            format!("{psi:<16}")
        } else {
            let style = crate::view::status_style(status_word, color);
            format!("{style}{psi:<16}{style:#}")
        };
        let line = format!(
            "{model:<width$}  {:<20}  {:>8}  {:>9}  {:>9}  {drift_cell}  {}",
            report
                .pointer("/window/end")
                .and_then(Value::as_str)
                .unwrap_or("-"),
            report
                .get("requests")
                .and_then(Value::as_u64)
                .map_or("-".into(), |requests| requests.to_string()),
            number("/confidence/mean", 3),
            number("/low_confidence/share", 3),
            note.join("; ")
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_per_model_with_or_without_a_report() {
        let mut reports = serde_json::Map::new();
        reports.insert(
            "trees".into(),
            serde_json::json!({
                "package": "arn:aws:sagemaker:eu-west-1:1:model-package/g/3",
                "window": {"start": "2026-11-30T10:00:00Z", "end": "2026-12-01T10:00:00Z"},
                "requests": 1200,
                "malformed": {"count": 2, "examples": []},
                "confidence": {"mean": 0.8123},
                "low_confidence": {"share": 0.071},
                "drift": {"status": "drift", "psi": 0.31}
            }),
        );
        reports.insert("grasses".into(), Value::Null);
        let text = table(&reports, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("MODEL    WINDOW END"), "{text}");
        assert!(
            lines[1].starts_with(
                "trees    2026-12-01T10:00:00Z      1200      0.812      0.071  drift (0.310)"
            ),
            "{text}"
        );
        assert!(
            lines[1].ends_with("version 3; 2 malformed record(s)"),
            "{text}"
        );
        assert!(lines[2].starts_with("grasses  -"), "{text}");
        assert!(lines[2].contains("no report yet"), "{text}");
    }
}
