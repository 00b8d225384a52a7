//! The shipped environments render to the golden templates under tests/golden/ and pass
//! `validate`. Set UPDATE_GOLDEN=1 to rewrite the golden files after an intended change.

mod common;

use common::{ENVIRONMENTS, repo, run};

#[test]
fn shipped_environments_validate_cleanly() {
    for environment in ENVIRONMENTS {
        let result = run(&repo(), &["validate", environment]);
        assert_eq!(result.code, 0, "validate {environment}:\n{}", result.stderr);
        assert!(result.stderr.contains("0 error(s)"), "{}", result.stderr);
    }
}

#[test]
fn rendered_templates_match_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for environment in ENVIRONMENTS {
        let out = tempfile::tempdir().expect("temp dir");
        let result = run(
            &repo(),
            &[
                "render",
                environment,
                "--out",
                &out.path().to_string_lossy(),
            ],
        );
        assert_eq!(result.code, 0, "render {environment}:\n{}", result.stderr);
        let golden = repo().join("tests/golden").join(environment);
        let mut rendered: Vec<_> = std::fs::read_dir(out.path())
            .expect("rendered folder")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        rendered.sort();
        assert!(!rendered.is_empty());
        if update {
            let _ = std::fs::remove_dir_all(&golden);
            std::fs::create_dir_all(&golden).expect("golden folder");
            for name in &rendered {
                let text = std::fs::read_to_string(out.path().join(name)).expect("rendered");
                std::fs::write(golden.join(name), scrub_code_hash(&text)).expect("write golden");
            }
            continue;
        }
        let mut expected: Vec<_> = std::fs::read_dir(&golden)
            .unwrap_or_else(|_| panic!("{} is missing; run with UPDATE_GOLDEN=1", golden.display()))
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        expected.sort();
        assert_eq!(
            rendered, expected,
            "stacks of {environment} differ from the golden set"
        );
        for name in rendered {
            let actual = scrub_code_hash(
                &std::fs::read_to_string(out.path().join(&name)).expect("rendered"),
            );
            let wanted = std::fs::read_to_string(golden.join(&name)).expect("golden");
            assert!(
                actual == wanted,
                "{environment}/{} differs from its golden file (UPDATE_GOLDEN=1 to accept):\n{}",
                name.to_string_lossy(),
                first_difference(&wanted, &actual)
            );
        }
    }
}

/// The step code's folder is named by its content hash (`code/<16 hex>/`); golden files hold
/// `code/STEPS_HASH/` so that editing a step script does not rewrite them.
/// `step_code_keys_follow_the_steps_folder` checks the real hash.
fn scrub_code_hash(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("/code/") {
        let (before, after) = rest.split_at(at + "/code/".len());
        out.push_str(before);
        let hex = after.as_bytes().iter().take(17).collect::<Vec<_>>();
        if hex.len() == 17
            && hex[..16].iter().all(|byte| byte.is_ascii_hexdigit())
            && *hex[16] == b'/'
        {
            out.push_str("STEPS_HASH");
            rest = &after[16..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn step_code_keys_follow_the_steps_folder() {
    let out = tempfile::tempdir().expect("temp dir");
    let result = run(
        &repo(),
        &["render", "staging", "--out", &out.path().to_string_lossy()],
    );
    assert_eq!(result.code, 0, "{}", result.stderr);
    let code = mlops_infra::step_code::StepCode::load(&repo()).expect("steps/");
    let uri = code.uri("mlops-images-staging-artifacts-222222222222");
    let template =
        std::fs::read_to_string(out.path().join("pipeline-plants.yaml")).expect("rendered");
    assert!(
        template.contains(&uri),
        "pipeline-plants.yaml does not read the step code at {uri}"
    );
    for script in ["data_quality.py", "preprocess.py", "evaluate.py"] {
        assert!(
            template.contains(&format!("/opt/ml/processing/input/code/{script}")),
            "pipeline-plants.yaml does not run {script}"
        );
    }
    assert!(code.file_names().any(|name| name == "requirements.txt"));
}

fn first_difference(wanted: &str, actual: &str) -> String {
    for (number, (a, b)) in wanted.lines().zip(actual.lines()).enumerate() {
        if a != b {
            return format!("line {}:\n  golden:   {a}\n  rendered: {b}", number + 1);
        }
    }
    format!(
        "lengths differ: golden {} lines, rendered {}",
        wanted.lines().count(),
        actual.lines().count()
    )
}

#[test]
fn json_output_is_the_same_template() {
    let out = tempfile::tempdir().expect("temp dir");
    let result = run(
        &repo(),
        &[
            "render",
            "staging",
            "--format",
            "json",
            "--out",
            &out.path().to_string_lossy(),
        ],
    );
    assert_eq!(result.code, 0, "{}", result.stderr);
    let json = std::fs::read_to_string(out.path().join("storage.json")).expect("json");
    let yaml =
        std::fs::read_to_string(repo().join("tests/golden/staging/storage.yaml")).expect("golden");
    let from_json = mlops_infra::template::Template::parse(&json).expect("json parses");
    let from_yaml = mlops_infra::template::Template::parse(&yaml).expect("yaml parses");
    assert_eq!(from_json, from_yaml);
}

#[test]
fn validate_json_report_lists_stacks_and_dependencies() {
    let result = run(&repo(), &["validate", "staging", "--output", "json"]);
    assert_eq!(result.code, 0, "{}", result.stderr);
    let report: serde_json::Value = serde_json::from_str(&result.stdout).expect("json on stdout");
    assert_eq!(report["valid"], true);
    let stacks = report["stacks"].as_array().expect("stacks");
    let iam = stacks
        .iter()
        .find(|stack| stack["id"] == "iam")
        .expect("iam stack");
    assert_eq!(iam["name"], "mlops-images-staging-iam");
    assert_eq!(iam["depends_on"], serde_json::json!(["storage"]));
}

/// cfn-lint from the project's venv (scripts/test installs it) over every rendered template.
#[test]
fn rendered_templates_pass_cfn_lint() {
    let cfn_lint = std::env::var_os("CFN_LINT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/cfn-lint"));
    assert!(
        cfn_lint.is_file(),
        "cfn-lint not found at {}: run scripts/test, which installs it into .venv",
        cfn_lint.display()
    );
    let out = tempfile::tempdir().expect("temp dir");
    let mut files = Vec::new();
    for environment in ENVIRONMENTS {
        let folder = out.path().join(environment);
        let result = run(
            &repo(),
            &["render", environment, "--out", &folder.to_string_lossy()],
        );
        assert_eq!(result.code, 0, "{}", result.stderr);
        for entry in std::fs::read_dir(&folder).expect("rendered") {
            files.push(entry.expect("entry").path());
        }
    }
    let output = std::process::Command::new(&cfn_lint)
        .current_dir(repo())
        .args(&files)
        .output()
        .expect("cfn-lint runs");
    assert!(
        output.status.success(),
        "cfn-lint found problems:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn verbose_validate_prints_the_launch_order() {
    let result = run(&repo(), &["-v", "validate", "staging"]);
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert!(
        result.stderr.contains(
            "launch order: storage → iam → monitoring, api, ci, retrain, pipeline-plants, pipeline-trees, pipeline-flowers, pipeline-grasses → endpoint-plants, endpoint-trees, endpoint-flowers, endpoint-grasses"
        ),
        "{}",
        result.stderr
    );
}
