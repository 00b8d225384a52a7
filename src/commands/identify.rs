//! `identify`: sends a photo to a parent model's `POST /identify` the way an app does (SigV4,
//! service `execute-api`, the usual credentials) and prints the sub-group and species.

use std::path::Path;

use serde_json::Value;

use super::deploy::aws_error;
use super::registry::guard;
use super::{Output, load_environment};
use crate::aws::CloudFormation;
use crate::aws::platform::Platform;
use crate::cli::{IdentifyArgs, OutputFormat};
use crate::config::{Environment, Model};
use crate::error::{Error, ExitStatus};

/// The stack output holding the URL apps call.
pub const URL_OUTPUT: &str = "IdentifyUrl";

pub async fn identify<C: CloudFormation, P: Platform>(
    client: &C,
    platform: &P,
    project_dir: &Path,
    args: &IdentifyArgs,
    output: &mut Output<'_>,
) -> ExitStatus {
    let environment = match load_environment(project_dir, &args.environment, output) {
        Ok(environment) => environment,
        Err(status) => return status,
    };
    let parent = match parent(&environment, args.parent.as_deref()) {
        Ok(parent) => parent,
        Err(error) => return output.fail(&[error]),
    };
    let image = match std::fs::read(&args.image) {
        Ok(image) => image,
        Err(source) => return output.fail(&[Error::io("read", &args.image, source)]),
    };
    let Some(content_type) = content_type(&image) else {
        return output.fail(&[Error::Usage {
            message: format!("{} is neither a JPEG nor a PNG", args.image.display()),
            hint: Some("the models take photos as JPEG or PNG".into()),
        }]);
    };
    if let Err(error) = guard(platform, &environment).await {
        return output.fail(&[error]);
    }
    let stack = format!("{}-router-{}", environment.prefix(), parent.name);
    let url = match client.stack_state(&stack).await {
        Ok(Some(deployed)) => deployed.outputs.get(URL_OUTPUT).cloned(),
        Ok(None) => None,
        Err(error) => return output.fail(&[aws_error(&format!("cannot read {stack}"), error)]),
    };
    let Some(url) = url else {
        return output.fail(&[Error::Usage {
            message: format!(
                "the router of `{}` is not deployed ({stack} has no {URL_OUTPUT})",
                parent.name
            ),
            hint: Some(format!("run `mlops-infra apply {}`", environment.name)),
        }]);
    };
    let (status, body) = match platform.post_signed(&url, content_type, &image).await {
        Ok(answer) => answer,
        Err(error) => return output.fail(&[aws_error(&format!("cannot call {url}"), error)]),
    };
    let answer: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::json!({"message": String::from_utf8_lossy(&body)}));
    if status != 200 {
        let message = answer
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        let code = answer.get("error").and_then(Value::as_str).unwrap_or("");
        return output.fail(&[Error::Usage {
            message: format!("{url} answered {status} {code}: {message}"),
            hint: (status == 403).then(|| {
                "the caller needs `execute-api:Invoke` on the API's POST /identify".to_string()
            }),
        }]);
    }
    let text = match args.output {
        OutputFormat::Json => {
            let mut text = serde_json::to_string_pretty(&answer).unwrap_or_default();
            text.push('\n');
            text
        }
        OutputFormat::Text => describe(&answer),
    };
    let _ = write!(output.out, "{text}");
    ExitStatus::Success
}

/// The parent model to ask: the one named, or the environment's only one.
fn parent<'a>(environment: &'a Environment, name: Option<&str>) -> Result<&'a Model, Error> {
    let parents: Vec<&Model> = environment
        .models
        .iter()
        .filter(|model| !model.routes.is_empty())
        .collect();
    let names = || {
        parents
            .iter()
            .map(|model| format!("`{}`", model.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        Some(name) => parents
            .iter()
            .copied()
            .find(|model| model.name == name)
            .ok_or_else(|| Error::Usage {
                message: format!("`{name}` is not a parent model of `{}`", environment.name),
                hint: Some(format!("parent models (with `routes`): {}", names())),
            }),
        None => match parents.as_slice() {
            [only] => Ok(only),
            [] => Err(Error::Usage {
                message: format!("`{}` has no parent model, so no router", environment.name),
                hint: Some("give a model `routes` and children naming it as `parent`".into()),
            }),
            _ => Err(Error::Usage {
                message: format!("`{}` has several parent models", environment.name),
                hint: Some(format!("choose one with --parent: {}", names())),
            }),
        },
    }
}

/// The photo's type, from its first bytes.
pub fn content_type(image: &[u8]) -> Option<&'static str> {
    if image.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if image.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else {
        None
    }
}

/// The answer as a person reads it: each level, its confidence and model version, then the
/// top five of each.
fn describe(answer: &Value) -> String {
    let level = |key: &str| -> String {
        let part = &answer[key];
        let top: Vec<String> = part["top5"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|item| {
                        format!(
                            "{} {:.3}",
                            item["name"].as_str().unwrap_or("?"),
                            item["confidence"].as_f64().unwrap_or_default()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        format!(
            "{:<9} {} ({:.3}), model {} version {}\n          top 5: {}\n",
            format!("{key}:"),
            part["name"].as_str().unwrap_or("?"),
            part["confidence"].as_f64().unwrap_or_default(),
            part["model"].as_str().unwrap_or("?"),
            part["package_version"].as_str().unwrap_or("?"),
            top.join(", ")
        )
    };
    let mut text = level("subgroup");
    text.push_str(&level("species"));
    if answer["low_confidence"].as_bool() == Some(true) {
        text.push_str("low confidence: a person should check this photo\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_and_png_are_told_by_their_first_bytes() {
        assert_eq!(content_type(b"\xFF\xD8\xFF\xE0rest"), Some("image/jpeg"));
        assert_eq!(content_type(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(content_type(b"GIF89a"), None);
    }

    #[test]
    fn an_answer_reads_level_by_level() {
        let answer = serde_json::json!({
            "subgroup": {"name": "trees", "confidence": 0.91, "model": "plants", "package_version": "3",
                         "top5": [{"name": "trees", "confidence": 0.91}, {"name": "grasses", "confidence": 0.09}]},
            "species": {"name": "oak", "confidence": 0.55, "model": "trees", "package_version": "1",
                        "top5": [{"name": "oak", "confidence": 0.55}]},
            "low_confidence": true
        });
        assert_eq!(
            describe(&answer),
            "subgroup: trees (0.910), model plants version 3\n          top 5: trees 0.910, grasses 0.090\n\
             species:  oak (0.550), model trees version 1\n          top 5: oak 0.550\n\
             low confidence: a person should check this photo\n"
        );
    }
}
