//! Environment files → a validated `Environment`.
//!
//! `environments/<name>.yaml` may `extends:` a shared base (`_common` for
//! `environments/_common.yaml`, which may extend another). Each file is parsed on its own into
//! the raw mirror, so unknown keys and wrong types are reported against the file that holds
//! them; the files are then deep-merged (maps merge, the extending file wins on everything
//! else) and validated into an `Environment`.

pub mod apply;
mod environment;
mod instance_types;
mod locate;
mod names;
mod platform;
mod raw;
pub mod review;
mod router;
mod schedule;

use std::path::{Path, PathBuf};

pub use environment::{Environment, Iam, Images, Model, Storage};
pub use names::check_bucket_name;
pub use platform::{
    Acceptance, Api, Autoscaling, Ci, Endpoint, Monitoring, Pipeline, Range, Serving, Split, Tuning,
};
pub use review::{RETRAIN_STATE_PREFIX, Review};
pub use router::Router;

use crate::error::{InputError, Position, did_you_mean};
use environment::MAX_ENVIRONMENT_LENGTH;
use locate::Locations;
use raw::RawEnvironment;

/// The folder of environment files inside a project.
pub const ENVIRONMENTS_DIR: &str = "environments";
const MAX_EXTENDS_DEPTH: usize = 8;

/// One parsed file, kept for locating problems found after merging.
struct Source {
    path: PathBuf,
    value: serde_yaml_ng::Value,
    locations: Locations,
}

/// Loads and validates environment `name` from `project_dir/environments/`.
pub fn load(project_dir: &Path, name: &str) -> Result<Environment, Vec<InputError>> {
    let directory = project_dir.join(ENVIRONMENTS_DIR);
    let path = directory.join(format!("{name}.yaml"));
    if name.starts_with('_') {
        return Err(vec![InputError::new(&path, format!("`{name}` is a shared base, not an environment"))
            .hint("files whose names start with `_` are only used through `extends:`; name an environment instead")]);
    }
    if let Err(why) = names::check_identifier(name, MAX_ENVIRONMENT_LENGTH) {
        return Err(vec![
            InputError::new(&path, format!("environment name `{name}` {why}"))
                .hint("environment names become part of stack and bucket names; rename the file"),
        ]);
    }
    if !path.is_file() {
        let available = list(project_dir);
        let mut error = InputError::new(&path, format!("environment `{name}` not found"));
        error = match did_you_mean(name, available.iter().map(String::as_str)) {
            Some(close) => error.hint(format!("did you mean `{close}`?")),
            None if available.is_empty() => error.hint(format!(
                "create {} (is `-C/--project-dir` pointing at the project?)",
                path.display()
            )),
            None => error.hint(format!("available environments: {}", available.join(", "))),
        };
        return Err(vec![error]);
    }

    let mut sources = vec![parse_file(&path)?];
    while let Some(base) = extends(&sources[sources.len() - 1]) {
        let child = &sources[sources.len() - 1].path;
        let base_path = directory.join(format!("{base}.yaml"));
        let position = sources[sources.len() - 1].locations.find("extends");
        if sources.iter().any(|source| source.path == base_path) {
            let chain: Vec<String> = sources
                .iter()
                .map(|source| source.path.display().to_string())
                .chain([base_path.display().to_string()])
                .collect();
            return Err(vec![
                InputError::new(
                    child,
                    format!("`extends` forms a cycle: {}", chain.join(" → ")),
                )
                .at(position)
                .key("extends"),
            ]);
        }
        if sources.len() > MAX_EXTENDS_DEPTH {
            return Err(vec![
                InputError::new(child, "`extends` chain is too long")
                    .at(position)
                    .hint(format!("keep it to at most {MAX_EXTENDS_DEPTH} files")),
            ]);
        }
        if !base_path.is_file() {
            return Err(vec![
                InputError::new(child, format!("base `{base}` not found: {} does not exist", base_path.display()))
                    .at(position)
                    .key("extends")
                    .hint("`extends` names a file in environments/ without `.yaml`, e.g. `extends: _common`"),
            ]);
        }
        sources.push(parse_file(&base_path)?);
    }

    let mut merged = serde_yaml_ng::Value::Null;
    for source in sources.iter().rev() {
        merge(&mut merged, source.value.clone());
    }
    let raw: RawEnvironment = serde_yaml_ng::from_value(merged)
        .map_err(|error| vec![InputError::new(&sources[0].path, error.to_string())])?;

    environment::validate(name, raw).map_err(|problems| {
        problems
            .into_iter()
            .map(|problem| {
                let (file, position) = locate(&sources, &problem.key);
                let mut error = InputError::new(file, problem.message)
                    .at(position)
                    .key(problem.key);
                error.hint = problem.hint;
                error
            })
            .collect()
    })
}

/// The environments of a project: `environments/*.yaml` other than the `_` bases, sorted.
pub fn list(project_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(project_dir.join(ENVIRONMENTS_DIR)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            let stem = path.file_stem()?.to_str()?.to_string();
            (path.extension()? == "yaml" && !stem.starts_with('_')).then_some(stem)
        })
        .collect();
    names.sort();
    names
}

fn parse_file(path: &Path) -> Result<Source, Vec<InputError>> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| vec![InputError::new(path, format!("cannot read file: {error}"))])?;
    let deserializer = serde_yaml_ng::Deserializer::from_str(&text);
    let raw: RawEnvironment = serde_path_to_error::deserialize(deserializer)
        .map_err(|error| vec![describe_parse_error(path, &text, error)])?;
    // Merged as the typed values, not the YAML text, so scalars keep the types the raw mirror
    // gave them (an unquoted account id stays the string it was written as).
    let value = serde_yaml_ng::to_value(&raw)
        .map_err(|error| vec![InputError::new(path, error.to_string())])?;
    Ok(Source {
        path: path.to_path_buf(),
        locations: Locations::index(&text),
        value,
    })
}

fn extends(source: &Source) -> Option<String> {
    source
        .value
        .get("extends")
        .and_then(|value| value.as_str())
        .map(str::to_string)
}

/// Turns serde's message into the tool's: the key path, the position, and a hint.
fn describe_parse_error(
    path: &Path,
    text: &str,
    error: serde_path_to_error::Error<serde_yaml_ng::Error>,
) -> InputError {
    let key = error.path().to_string();
    let key = if key == "." { String::new() } else { key };
    let inner = error.inner();
    let position = inner.location().map(|location| Position {
        line: location.line(),
        column: location.column(),
    });
    let message = strip_location(&inner.to_string());
    let locations = Locations::index(text);
    let position = position.or_else(|| locations.find(&key));

    if let Some(rest) = message.strip_prefix("unknown field `") {
        let unknown = rest.split('`').next().unwrap_or_default();
        let expected = backticked_words(rest.split_once(", expected").map_or("", |(_, tail)| tail));
        let mut input = InputError::new(path, format!("unknown key `{unknown}`"))
            .at(position)
            .key(key);
        input = match did_you_mean(unknown, expected.iter().map(String::as_str)) {
            Some(close) => input.hint(format!("did you mean `{close}`?")),
            None => input.hint(format!("expected one of: {}", expected.join(", "))),
        };
        return input;
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let missing = rest.split('`').next().unwrap_or_default();
        return InputError::new(path, format!("missing required key `{missing}`"))
            .at(position)
            .key(key)
            .hint(format!("add `{missing}:` here"));
    }
    let mut input = InputError::new(path, message.clone())
        .at(position)
        .key(key.clone());
    if message.starts_with("invalid type") {
        input = input.hint(if key.ends_with("account_id") {
            "quote the account id so YAML keeps it a string: account_id: \"123456789012\""
                .to_string()
        } else {
            "check the value's type against docs/configuration.md".to_string()
        });
    }
    input
}

/// serde_yaml puts the key path before the message and " at line L column C" after it; the
/// tool prints both itself.
fn strip_location(message: &str) -> String {
    let message = match message.split_once(": ") {
        Some((path, rest)) if !path.contains(char::is_whitespace) => rest,
        _ => message,
    };
    match message.rfind(" at line ") {
        Some(cut) => message[..cut].to_string(),
        None => message.to_string(),
    }
}

fn backticked_words(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Deep merge: maps merge key by key; anything else in `overlay` replaces `base`.
fn merge(base: &mut serde_yaml_ng::Value, overlay: serde_yaml_ng::Value) {
    use serde_yaml_ng::Value;
    match (base, overlay) {
        (Value::Mapping(base), Value::Mapping(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// The file that sets `key` (the environment first, then its bases) and the position there.
fn locate<'a>(sources: &'a [Source], key: &str) -> (&'a Path, Option<Position>) {
    let mut path = key;
    loop {
        if let Some(source) = sources
            .iter()
            .find(|source| source.locations.contains(path))
        {
            return (&source.path, source.locations.find(key));
        }
        match path.rfind(['.', '[']) {
            Some(cut) => path = &path[..cut],
            None => return (&sources[0].path, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join(ENVIRONMENTS_DIR)).expect("mkdir");
        for (name, text) in files {
            std::fs::write(dir.path().join(ENVIRONMENTS_DIR).join(name), text).expect("write");
        }
        dir
    }

    const COMMON: &str =
        "project: demo\nregion: eu-west-1\naccount_id: \"123456789012\"\ntags:\n  team: ml\n";

    #[test]
    fn merges_the_base_under_the_environment() {
        let dir = project(&[
            ("_common.yaml", COMMON),
            (
                "dev.yaml",
                "extends: _common\nregion: eu-central-1\ntags:\n  cost: low\n",
            ),
        ]);
        let environment = load(dir.path(), "dev").expect("valid");
        assert_eq!(environment.region, "eu-central-1");
        assert_eq!(environment.project, "demo");
        assert_eq!(environment.tags["team"], "ml");
        assert_eq!(environment.tags["cost"], "low");
        assert_eq!(
            environment.storage.data_bucket_name,
            "demo-dev-data-123456789012"
        );
    }

    #[test]
    fn unknown_key_names_file_line_and_suggestion() {
        let dir = project(&[(
            "prod.yaml",
            "project: demo\nregion: eu-west-1\naccount_id: \"123456789012\"\nmodels:\n  - name: plants\n    training_instnace_type: ml.m5.large\n",
        )]);
        let errors = load(dir.path(), "prod").expect_err("invalid");
        let error = &errors[0];
        assert!(error.file.ends_with("environments/prod.yaml"));
        assert_eq!(error.position.map(|p| p.line), Some(6));
        assert_eq!(error.message, "unknown key `training_instnace_type`");
        assert_eq!(
            error.key.as_deref(),
            Some("models[0].training_instnace_type")
        );
        assert_eq!(
            error.hint.as_deref(),
            Some("did you mean `training_instance_type`?")
        );
    }

    #[test]
    fn problem_in_a_base_is_reported_against_the_base() {
        let dir = project(&[
            (
                "_common.yaml",
                "project: demo\nregion: eu-west-1\naccount_id: \"123456789012\"\nstorage:\n  data_bucket_name: Bad_Bucket\n",
            ),
            ("dev.yaml", "extends: _common\n"),
        ]);
        let errors = load(dir.path(), "dev").expect_err("invalid");
        assert!(errors[0].file.ends_with("_common.yaml"), "{:?}", errors[0]);
        assert_eq!(errors[0].position.map(|p| p.line), Some(5));
    }

    #[test]
    fn missing_environment_suggests_a_close_name() {
        let dir = project(&[("staging.yaml", COMMON)]);
        let errors = load(dir.path(), "stagign").expect_err("missing");
        assert_eq!(errors[0].hint.as_deref(), Some("did you mean `staging`?"));
    }

    #[test]
    fn extends_cycle_is_named() {
        let dir = project(&[
            ("_a.yaml", "extends: _b\n"),
            ("_b.yaml", "extends: _a\n"),
            ("dev.yaml", "extends: _a\n"),
        ]);
        let errors = load(dir.path(), "dev").expect_err("cycle");
        assert!(errors[0].message.contains("cycle"), "{}", errors[0].message);
    }

    #[test]
    fn lists_environments_without_bases() {
        let dir = project(&[
            ("_common.yaml", COMMON),
            ("dev.yaml", ""),
            ("prod.yaml", ""),
        ]);
        assert_eq!(list(dir.path()), vec!["dev", "prod"]);
    }
}
