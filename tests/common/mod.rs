//! Helpers shared by the integration tests: run the built binary in a project folder.

#![allow(dead_code)]

pub mod capture;

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// `apply <target> --yes`, three stacks at a time: how the tests apply.
#[allow(dead_code)]
pub fn apply_args(target: &str) -> mlops_infra::cli::ApplyArgs {
    mlops_infra::cli::ApplyArgs {
        target: target.into(),
        yes: true,
        allow_replace: Vec::new(),
        stacks: Vec::new(),
        concurrency: 3,
        revert_drift: false,
        output: mlops_infra::cli::OutputFormat::Text,
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `mlops-infra -C <project> <args>` with colour off.
pub fn run(project: &Path, args: &[&str]) -> Run {
    run_with(project, args, &[])
}

/// Runs the binary with extra environment variables (an endpoint, credentials).
pub fn run_with(project: &Path, args: &[&str], environment: &[(&str, &str)]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_mlops-infra"))
        .arg("-C")
        .arg(project)
        .args(args)
        .env("NO_COLOR", "1")
        .envs(environment.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs the binary on a pseudo-terminal `columns` wide and 50 rows high (util-linux
/// `script`, with `stty` setting the size) and plays everything it showed on a terminal
/// emulator. Returns the exit code and the emulator.
pub fn run_in_terminal(
    project: &Path,
    args: &[&str],
    environment: &[(&str, &str)],
    columns: u16,
) -> (i32, vt100::Parser) {
    let quote = |text: &str| format!("'{}'", text.replace('\'', "'\\''"));
    let mut command = format!(
        "stty cols {columns} rows 50; exec {} -C {}",
        quote(env!("CARGO_BIN_EXE_mlops-infra")),
        quote(&project.to_string_lossy())
    );
    for arg in args {
        command.push(' ');
        command.push_str(&quote(arg));
    }
    let output = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .envs(environment.iter().copied())
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("util-linux `script` runs");
    let mut terminal = vt100::Parser::new(50, columns, 0);
    terminal.process(&output.stdout);
    (output.status.code().unwrap_or(-1), terminal)
}

/// Writes an AWS config and credentials file into `dir`: the default profile has the local
/// AWS's `testing` keys, and `profile` assumes `role_arn` from it. Returns their paths, for
/// AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE.
#[allow(dead_code)]
pub fn assume_role_profile(dir: &Path, profile: &str, role_arn: &str) -> (String, String) {
    let config = dir.join("config");
    let credentials = dir.join("credentials");
    std::fs::write(
        &config,
        format!(
            "[default]\nregion = eu-west-1\n\n[profile {profile}]\nrole_arn = {role_arn}\nsource_profile = default\nregion = eu-west-1\n"
        ),
    )
    .expect("config");
    std::fs::write(
        &credentials,
        "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    )
    .expect("credentials");
    (
        config.to_string_lossy().into_owned(),
        credentials.to_string_lossy().into_owned(),
    )
}

/// Copies a folder tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// A temporary copy of the repository's environments, templates, step code and payloads.
pub fn project_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for folder in [
        "environments",
        "templates",
        "steps",
        "router",
        "retrain",
        "payloads",
    ] {
        copy_tree(&repo().join(folder), &dir.path().join(folder));
    }
    dir
}

/// Replaces the first `from` in a project file with `to`; the file must contain it.
pub fn edit(project: &Path, file: &str, from: &str, to: &str) {
    let path = project.join(file);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{file} lacks `{from}`");
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
}

pub const ENVIRONMENTS: [&str; 3] = ["dev", "staging", "prod"];

/// Output as a snapshot keeps it: a project folder's temporary path as `<project>`, elapsed
/// times (`[  12s]`, `in 3.2 s`, `12 ms`) as `N`, so a slower machine reads the same.
pub fn seen(text: &str, project: &Path) -> String {
    let text = text.replace(&*project.to_string_lossy(), "<project>");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(position) = rest.find(|c: char| c.is_ascii_digit()) {
        let (head, tail) = rest.split_at(position);
        out.push_str(head);
        let digits = tail
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(tail.len());
        let unit = &tail[digits..];
        let timed = ["s]", " s", " ms"]
            .iter()
            .any(|suffix| unit.starts_with(suffix))
            && !head.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '-');
        out.push_str(if timed { "N" } else { &tail[..digits] });
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

/// A local AWS started through `scripts/local-aws` in its own state folder, stopped on drop.
pub struct LocalAws {
    pub url: String,
    state: tempfile::TempDir,
}

impl LocalAws {
    /// Starts one that answers as `account`. Fails (never skips) when the emulator's venv is
    /// missing: `scripts/local-aws install` (or `scripts/test`) sets it up.
    pub fn start(account: &str) -> LocalAws {
        LocalAws::launch(account, false)
    }

    /// Starts one that also checks every direct API call against the caller's IAM policies
    /// (`--enforce-iam`); the `testing` keys are the account's root.
    pub fn start_enforcing_iam(account: &str) -> LocalAws {
        LocalAws::launch(account, true)
    }

    fn launch(account: &str, enforce_iam: bool) -> LocalAws {
        assert!(
            repo().join(".venv/bin/python").is_file(),
            "the local AWS is not installed: run scripts/local-aws install (scripts/test does)"
        );
        let state = tempfile::tempdir().expect("state folder");
        let mut command = Command::new(repo().join("scripts/local-aws"));
        command.arg("start");
        if enforce_iam {
            command.arg("--enforce-iam");
        }
        let output = command
            .env("LOCAL_AWS_STATE_DIR", state.path())
            .env("MOTO_ACCOUNT_ID", account)
            .output()
            .expect("scripts/local-aws runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "local AWS did not start:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let url = stdout.lines().last().expect("the URL").trim().to_string();
        LocalAws { url, state }
    }

    /// What the emulator logged: requests, and tracebacks when something failed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.state.path().join("server.log")).unwrap_or_default()
    }

    /// Runs a boto3 snippet against this emulator (the venv has boto3) and returns its stdout:
    /// for tests that look at what apply left behind with an independent client.
    pub fn boto3(&self, region: &'static str, script: &str) -> String {
        let output = Command::new(repo().join(".venv/bin/python"))
            .arg("-c")
            .arg(script)
            .envs(self.environment(region))
            .env("AWS_DEFAULT_REGION", region)
            .output()
            .expect("python runs");
        assert!(
            output.status.success(),
            "boto3 script failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Queues the bodies moto's InvokeEndpoint answers with (JSON), in request order; each
    /// endpoint takes the next one for a body it has not seen.
    pub fn queue_endpoint_answers(&self, account: &str, region: &'static str, bodies: &[String]) {
        let results: Vec<serde_json::Value> = bodies
            .iter()
            .map(|body| serde_json::json!({"Body": body, "ContentType": "application/json"}))
            .collect();
        let request =
            serde_json::json!({"account_id": account, "region": region, "results": results});
        self.boto3(
            region,
            &format!(
                r#"
import os, urllib.request
request = urllib.request.Request(os.environ["AWS_ENDPOINT_URL"] + "/moto-api/static/sagemaker/endpoint-results",
    data={request:?}.encode(), headers={{"Content-Type": "application/json"}}, method="POST")
urllib.request.urlopen(request).read()
"#,
                request = request.to_string()
            ),
        );
    }

    /// Environment variables pointing the SDK at this emulator.
    pub fn environment(&self, region: &'static str) -> Vec<(&str, &str)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", region),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
    }
}

impl Drop for LocalAws {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/local-aws"))
            .arg("stop")
            .env("LOCAL_AWS_STATE_DIR", self.state.path())
            .output();
    }
}
