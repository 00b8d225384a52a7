//! The plan/apply core against the in-memory CloudFormation (real CloudFormation semantics):
//! scheduling and output wiring, failures and what they skip, recovery from a failed first
//! create, blocked stacks, dangerous changes, protection, stale saved plans, throttling.

mod common;

use std::path::Path;

use common::capture::{Captured as Run, capture};
use common::{edit, project_copy, repo, seen};
use mlops_infra::aws::fake::FakeCloudFormation;
use mlops_infra::aws::fake_platform::FakePlatform;
use mlops_infra::cli::{ApplyArgs, PlanArgs, PlanFormat};
use mlops_infra::commands::deploy;
use mlops_infra::error::ExitStatus;

async fn apply(
    fake: &FakeCloudFormation,
    project: &Path,
    target: &str,
    extra: impl FnOnce(&mut ApplyArgs),
) -> Run {
    let mut args = common::apply_args(target);
    extra(&mut args);
    let platform = FakePlatform::new("222222222222");
    capture("apply", async |output, context| {
        deploy::apply(fake, &platform, project, &args, output, context).await
    })
    .await
}

async fn plan(fake: &FakeCloudFormation, project: &Path, out_file: Option<&Path>) -> Run {
    let args = PlanArgs {
        environment: "staging".into(),
        output: PlanFormat::Json,
        detailed_exitcode: true,
        stacks: Vec::new(),
        out: out_file.map(Path::to_path_buf),
        refresh: false,
        revert_drift: false,
    };
    let platform = FakePlatform::new("222222222222");
    capture("plan", async |output, context| {
        deploy::plan(fake, &platform, project, &args, output, context).await
    })
    .await
}

fn summary_line<'a>(run: &'a Run, stack: &str) -> &'a str {
    let summary = run
        .stderr
        .rsplit_once("summary:")
        .map_or("", |(_, summary)| summary);
    summary
        .lines()
        .find(|line| line.trim_start().starts_with(stack))
        .unwrap_or_default()
}

#[tokio::test(flavor = "current_thread")]
async fn applies_in_dependency_order_feeding_outputs_and_plans_clean_after() {
    let fake = FakeCloudFormation::new();
    let run = apply(&fake, &repo(), "staging", |_| {}).await;
    assert_eq!(run.status, ExitStatus::Success, "{}", run.stderr);
    let storage = fake.stack("mlops-images-staging-storage").expect("storage");
    let iam = fake.stack("mlops-images-staging-iam").expect("iam");
    assert_eq!(storage.status.as_str(), "CREATE_COMPLETE");
    assert_eq!(
        iam.parameters["KeyArn"], storage.outputs["KeyArn"],
        "outputs feed parameters"
    );
    assert_eq!(
        iam.parameters["DataBucketArn"],
        storage.outputs["DataBucketArn"]
    );
    // iam starts only after storage finished.
    let storage_done = fake
        .events("mlops-images-staging-storage")
        .into_iter()
        .find(|event| {
            event.logical_id == "mlops-images-staging-storage" && event.status == "CREATE_COMPLETE"
        })
        .expect("storage completed");
    let iam_started = fake
        .events("mlops-images-staging-iam")
        .into_iter()
        .filter(|event| event.status == "CREATE_IN_PROGRESS")
        .map(|event| event.timestamp)
        .min()
        .expect("iam started");
    assert!(
        storage_done.timestamp < iam_started,
        "{} !< {iam_started}",
        storage_done.timestamp
    );

    fake.clear_calls();
    let again = plan(&fake, &repo(), None).await;
    assert_eq!(again.status, ExitStatus::Success, "{}", again.stderr);
    let calls = fake.calls();
    assert!(
        !calls.iter().any(|call| call.contains("CreateChangeSet")),
        "an unchanged environment needs no change set: {calls:#?}"
    );
    for stack in ["storage", "iam", "endpoint-plants"] {
        assert!(
            fake.change_sets(&format!("mlops-images-staging-{stack}"))
                .is_empty()
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_plan_leaves_no_change_set_behind() {
    let fake = FakeCloudFormation::new();
    assert_eq!(
        apply(&fake, &repo(), "staging", |_| {}).await.status,
        ExitStatus::Success
    );
    let project = project_copy();
    edit(
        project.path(),
        "environments/staging.yaml",
        "noncurrent_version_expiration_days: 30",
        "noncurrent_version_expiration_days: 60",
    );
    fake.clear_calls();
    let changed = plan(&fake, project.path(), None).await;
    assert_eq!(changed.status, ExitStatus::Changes, "{}", changed.stderr);
    let calls = fake.calls();
    assert_eq!(
        calls
            .iter()
            .filter(|call| call.contains("CreateChangeSet"))
            .count(),
        1,
        "{calls:#?}"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|call| call.contains("DeleteChangeSet"))
            .count(),
        1,
        "{calls:#?}"
    );
    assert!(fake.change_sets("mlops-images-staging-storage").is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn stacks_after_the_bootstrap_deploy_through_the_cloudformation_role() {
    let fake = FakeCloudFormation::new();
    let applied = apply(&fake, &repo(), "staging", |_| {}).await;
    assert_eq!(applied.status, ExitStatus::Success, "{}", applied.stderr);
    let role = "arn:aws:iam::222222222222:role/mlops-images/mlops-images-staging-cloudformation";
    for bootstrap in ["storage", "iam"] {
        let stack = fake
            .stack(&format!("mlops-images-staging-{bootstrap}"))
            .expect("deployed");
        assert_eq!(
            stack.role_arn, None,
            "{bootstrap} is deployed by the caller"
        );
    }
    for through_role in [
        "monitoring",
        "api",
        "ci",
        "pipeline-plants",
        "endpoint-trees",
    ] {
        let stack = fake
            .stack(&format!("mlops-images-staging-{through_role}"))
            .expect("deployed");
        assert_eq!(stack.role_arn.as_deref(), Some(role), "{through_role}");
    }
    assert!(
        applied
            .stderr
            .contains("deployed by role mlops-images-staging-cloudformation"),
        "{}",
        applied.stderr
    );
    assert!(
        applied.stderr.contains("deployed by the caller (bootstrap"),
        "{}",
        applied.stderr
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_failure_stops_its_dependents_and_a_rerun_recreates_the_failed_stack() {
    let fake = FakeCloudFormation::new();
    fake.fail_next_execute(
        "mlops-images-staging-iam",
        "SageMakerExecutionRole",
        "Role limit exceeded",
    );
    let failed = apply(&fake, &repo(), "staging", |_| {}).await;
    assert_eq!(failed.status, ExitStatus::Failure);
    let iam = summary_line(&failed, "mlops-images-staging-iam");
    assert!(iam.contains("FAILED (ROLLBACK_COMPLETE), first failure at SageMakerExecutionRole: Role limit exceeded"), "{}", failed.stderr);
    assert!(
        summary_line(&failed, "mlops-images-staging-storage").contains("done (CREATE_COMPLETE)")
    );
    // Every stack after the bootstrap is deployed through the role iam creates.
    for dependent in [
        "monitoring",
        "api",
        "ci",
        "pipeline-plants",
        "endpoint-grasses",
    ] {
        let line = summary_line(&failed, &format!("mlops-images-staging-{dependent}"));
        assert!(
            line.contains("skipped: iam did not apply"),
            "{dependent}: {line}"
        );
    }
    assert_eq!(
        fake.stack("mlops-images-staging-iam")
            .expect("left behind")
            .status
            .as_str(),
        "ROLLBACK_COMPLETE"
    );

    let rerun = apply(&fake, &repo(), "staging", |_| {}).await;
    assert_eq!(rerun.status, ExitStatus::Success, "{}", rerun.stderr);
    assert!(
        rerun
            .stderr
            .contains("- mlops-images-staging-iam (delete and create again)")
            || rerun
                .stderr
                .contains("mlops-images-staging-iam (delete and create again)"),
        "{}",
        rerun.stderr
    );
    assert_eq!(
        fake.stack("mlops-images-staging-iam")
            .expect("iam")
            .status
            .as_str(),
        "CREATE_COMPLETE"
    );
    assert!(summary_line(&rerun, "mlops-images-staging-storage").contains("no changes"));
}

#[tokio::test(flavor = "current_thread")]
async fn a_stack_being_updated_elsewhere_blocks_the_apply() {
    let fake = FakeCloudFormation::new();
    assert_eq!(
        apply(&fake, &repo(), "staging", |_| {}).await.status,
        ExitStatus::Success
    );
    fake.set_status("mlops-images-staging-storage", "UPDATE_IN_PROGRESS")
        .expect("status");
    fake.clear_calls();
    let blocked = apply(&fake, &repo(), "staging", |_| {}).await;
    assert_eq!(blocked.status, ExitStatus::Failure);
    assert!(blocked.stderr.contains("stack mlops-images-staging-storage is blocked: another operation is running (UPDATE_IN_PROGRESS)"), "{}", blocked.stderr);
    assert!(
        !fake
            .calls()
            .iter()
            .any(|call| call.contains("ExecuteChangeSet"))
    );
}

#[tokio::test(flavor = "current_thread")]
async fn protected_environments_refuse_dangerous_changes_unless_allowed_and_are_protected() {
    let fake = FakeCloudFormation::new();
    let project = project_copy();
    edit(
        project.path(),
        "environments/staging.yaml",
        "extends: _common\n",
        "extends: _common\nprotected: true\n",
    );
    assert_eq!(
        apply(&fake, project.path(), "staging", |_| {}).await.status,
        ExitStatus::Success
    );
    let storage = fake.stack("mlops-images-staging-storage").expect("storage");
    assert!(storage.termination_protection);
    let policy = fake
        .stack_policy("mlops-images-staging-storage")
        .expect("policy");
    assert!(
        policy.contains("LogicalResourceId/DataBucket") && policy.contains("Update:Replace"),
        "{policy}"
    );

    edit(
        project.path(),
        "environments/staging.yaml",
        "storage:\n",
        "storage:\n  data_bucket_name: mlops-images-staging-images\n",
    );
    fake.clear_calls();
    let refused = apply(&fake, project.path(), "staging", |_| {}).await;
    assert_eq!(refused.status, ExitStatus::Failure);
    insta::assert_snapshot!(
        "error_protected_replacement",
        seen(&refused.stderr, project.path())
    );
    assert!(
        refused.stderr.contains(
            "refusing to replace DataBucket (AWS::S3::Bucket) in stack mlops-images-staging-storage"
        ),
        "{}",
        refused.stderr
    );
    assert!(
        !fake
            .calls()
            .iter()
            .any(|call| call.contains("ExecuteChangeSet"))
    );

    let allowed = apply(&fake, project.path(), "staging", |args| {
        args.allow_replace = vec!["DataBucket".into()]
    })
    .await;
    assert_eq!(allowed.status, ExitStatus::Success, "{}", allowed.stderr);
    let storage = fake.stack("mlops-images-staging-storage").expect("storage");
    assert!(
        storage.outputs["DataBucketName"].contains("mlops-images-staging-images")
            || storage
                .template_body
                .contains("mlops-images-staging-images")
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_saved_plan_applies_exactly_and_goes_stale() {
    let fake = FakeCloudFormation::new();
    assert_eq!(
        apply(&fake, &repo(), "staging", |_| {}).await.status,
        ExitStatus::Success
    );
    let project = project_copy();
    edit(
        project.path(),
        "environments/staging.yaml",
        "noncurrent_version_expiration_days: 30",
        "noncurrent_version_expiration_days: 60",
    );
    let saved = project.path().join("saved.json");
    assert_eq!(
        plan(&fake, project.path(), Some(&saved)).await.status,
        ExitStatus::Changes
    );

    let applied = apply(&fake, project.path(), &saved.to_string_lossy(), |_| {}).await;
    assert_eq!(applied.status, ExitStatus::Success, "{}", applied.stderr);
    assert!(
        fake.stack("mlops-images-staging-storage")
            .expect("storage")
            .template_body
            .contains("NoncurrentDays: 60")
    );

    let stale = apply(&fake, project.path(), &saved.to_string_lossy(), |_| {}).await;
    assert_eq!(stale.status, ExitStatus::Failure);
    assert!(
        stale
            .stderr
            .contains("the saved plan is stale: mlops-images-staging-storage changed"),
        "{}",
        stale.stderr
    );
}

#[tokio::test(flavor = "current_thread")]
async fn throttling_is_retried() {
    let fake = FakeCloudFormation::new();
    fake.throttle_next(3);
    let run = apply(&fake, &repo(), "staging", |_| {}).await;
    assert_eq!(run.status, ExitStatus::Success, "{}", run.stderr);
    assert!(run.stdout.contains("\"outcome\":\"applied\""));
}

#[tokio::test(flavor = "current_thread")]
async fn recreating_a_failed_stack_needs_confirmation() {
    let fake = FakeCloudFormation::new();
    fake.fail_next_execute(
        "mlops-images-staging-storage",
        "DataKey",
        "KMS limit exceeded",
    );
    assert_eq!(
        apply(&fake, &repo(), "staging", |_| {}).await.status,
        ExitStatus::Failure
    );
    let unconfirmed = apply(&fake, &repo(), "staging", |args| args.yes = false).await;
    assert_eq!(unconfirmed.status, ExitStatus::Failure);
    assert!(
        unconfirmed.stderr.contains("delete and create again mlops-images-staging-storage (their first create failed) and nobody can confirm here"),
        "{}",
        unconfirmed.stderr
    );
    assert_eq!(
        fake.stack("mlops-images-staging-storage")
            .expect("kept")
            .status
            .as_str(),
        "ROLLBACK_COMPLETE"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn templates_over_the_inline_limit_are_uploaded_first() {
    let fake = FakeCloudFormation::new();
    let project = project_copy();
    // Five parents of ten children each: the iam stack's policies name every model's
    // resources, and routers stay of a size Lambda takes.
    let mut models = String::new();
    for parent in 0..5 {
        let routes: Vec<String> = (0..10)
            .map(|index| format!("group{parent}x{index}"))
            .collect();
        models.push_str(&format!(
            "  - name: plants{parent}\n    routes: [{}]\n",
            routes.join(", ")
        ));
        for route in &routes {
            models.push_str(&format!("  - name: {route}\n    parent: plants{parent}\n    subgroup: {route}\n    num_classes: 10\n"));
        }
    }
    std::fs::write(
        project.path().join("environments/staging.yaml"),
        format!("extends: _common\naccount_id: \"222222222222\"\nmodels:\n{models}"),
    )
    .expect("write");
    let run = apply(&fake, project.path(), "staging", |_| {}).await;
    assert_eq!(run.status, ExitStatus::Success, "{}", run.stderr);
    let note = run
        .stderr
        .lines()
        .find(|line| line.contains("uploaded to") && line.contains("staging-iam"))
        .expect("an upload note for the iam template");
    let url = note.rsplit(' ').next().expect("url");
    let body = fake.uploaded(url).expect("the template was uploaded");
    assert!(body.len() > 51_200, "{} bytes", body.len());
    assert!(
        url.contains("mlops-images-staging-artifacts-222222222222"),
        "{url}"
    );
    assert_eq!(
        fake.stack("mlops-images-staging-iam")
            .expect("iam")
            .template_body,
        body
    );
}

#[tokio::test(flavor = "current_thread")]
async fn applying_one_stack_uses_its_deployed_dependencies() {
    let fake = FakeCloudFormation::new();
    assert_eq!(
        apply(&fake, &repo(), "staging", |_| {}).await.status,
        ExitStatus::Success
    );
    let project = project_copy();
    edit(
        project.path(),
        "environments/staging.yaml",
        "  blue_green: true\n",
        "  blue_green: true\n  latency_alarm_milliseconds: 700\n",
    );
    let run = apply(&fake, project.path(), "staging", |args| {
        args.stacks = vec!["endpoint-plants".into()];
    })
    .await;
    assert_eq!(run.status, ExitStatus::Success, "{}", run.stderr);
    assert!(
        summary_line(&run, "mlops-images-staging-endpoint-plants")
            .contains("done (UPDATE_COMPLETE)"),
        "{}",
        run.stderr
    );
    // The other endpoints were left for a later apply.
    let rest = plan(&fake, project.path(), None).await;
    let plan: serde_json::Value = serde_json::from_str(&rest.stdout).expect("json plan");
    let updates: Vec<&str> = plan["stacks"]
        .as_array()
        .expect("stacks")
        .iter()
        .filter(|stack| stack["action"] == "update")
        .map(|stack| stack["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        updates,
        ["endpoint-trees", "endpoint-flowers", "endpoint-grasses"]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn step_code_is_uploaded_once_and_not_again_while_unchanged() {
    let fake = FakeCloudFormation::new();
    let first = apply(&fake, &repo(), "staging", |_| {}).await;
    assert_eq!(first.status, ExitStatus::Success, "{}", first.stderr);
    let uploads = fake
        .calls()
        .iter()
        .filter(|call| call.contains("PutObject"))
        .count();
    // Four files (three scripts and the requirements), each uploaded by whichever of the
    // four pipeline stacks got there first; the others found it (HeadObject).
    assert!((4..=16).contains(&uploads), "{uploads} uploads");
    let code = mlops_infra::step_code::StepCode::load(&repo()).expect("steps/");
    for asset in code.assets("mlops-images-staging-artifacts-222222222222") {
        let url = mlops_infra::aws::template_url(
            &asset.bucket,
            mlops_infra::aws::fake::REGION,
            &asset.key,
        );
        assert_eq!(fake.uploaded(&url).as_deref(), Some(&*asset.body), "{url}");
    }

    // A pipeline change updates the pipeline stacks; the unchanged code is not sent again.
    let project = project_copy();
    edit(
        project.path(),
        "environments/staging.yaml",
        "schedule: rate(7 days)",
        "schedule: rate(3 days)",
    );
    // The stacks to update share their step code: each asset is checked once by the plan and
    // once by the apply (a saved plan may be applied later), not once per stack.
    let planned: serde_json::Value =
        serde_json::from_str(&plan(&fake, project.path(), None).await.stdout).expect("json plan");
    let shared: std::collections::BTreeSet<(String, String)> = planned["stacks"]
        .as_array()
        .expect("stacks")
        .iter()
        .filter(|stack| stack["action"] == "update")
        .flat_map(|stack| stack["assets"].as_array().expect("assets").iter())
        .map(|asset| (asset["bucket"].to_string(), asset["key"].to_string()))
        .collect();
    let updated = planned["stacks"]
        .as_array()
        .expect("stacks")
        .iter()
        .filter(|stack| {
            stack["action"] == "update" && !stack["assets"].as_array().expect("assets").is_empty()
        })
        .count();
    assert!(
        updated > 1 && !shared.is_empty(),
        "{updated} stacks share {shared:?}"
    );
    fake.clear_calls();
    let second = apply(&fake, project.path(), "staging", |_| {}).await;
    assert_eq!(second.status, ExitStatus::Success, "{}", second.stderr);
    let calls = fake.calls();
    let checks = calls
        .iter()
        .filter(|call| call.contains("HeadObject"))
        .count();
    assert_eq!(checks, 2 * shared.len(), "{calls:?}");
    // The one object written is the record of deployed templates.
    assert_eq!(count(&calls, "PutObject"), 1, "{calls:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn status_and_outputs_refuse_another_accounts_credentials() {
    let fake = FakeCloudFormation::new();
    fake.set_caller_account("333333333333");
    let args = mlops_infra::cli::StatusArgs {
        environment: "staging".into(),
        drift: false,
    };
    let status = capture("status", async |output, context| {
        deploy::status(&fake, &repo(), &args, output, context).await
    })
    .await;
    assert_eq!(status.status, ExitStatus::Failure);
    assert!(!status.stdout.contains("NOT_DEPLOYED"), "{}", status.stdout);
    insta::assert_snapshot!("error_status_other_account", seen(&status.stderr, &repo()));
    assert!(status.stderr.contains("333333333333"), "{}", status.stderr);
    let outputs_args = mlops_infra::cli::OutputsArgs {
        environment: "staging".into(),
        output: mlops_infra::cli::OutputFormat::Text,
    };
    let outputs = capture("outputs", async |output, context| {
        deploy::outputs(&fake, &repo(), &outputs_args, output, context).await
    })
    .await;
    assert_eq!(outputs.status, ExitStatus::Failure);
    insta::assert_snapshot!(
        "error_outputs_other_account",
        seen(&outputs.stderr, &repo())
    );
    assert!(
        outputs.stderr.contains("333333333333"),
        "{}",
        outputs.stderr
    );
}

#[tokio::test(flavor = "current_thread")]
async fn destroy_says_what_it_keeps_and_a_no_deletes_nothing() {
    let fake = FakeCloudFormation::new();
    let applied = apply(&fake, &repo(), "staging", |_| {}).await;
    assert_eq!(applied.status, ExitStatus::Success, "{}", applied.stderr);
    let args = mlops_infra::cli::DestroyArgs {
        environment: "staging".into(),
        yes: false,
        force: false,
    };
    let declined = common::capture::capture_answering("destroy", false, async |output, context| {
        deploy::destroy(&fake, &repo(), &args, output, context).await
    })
    .await;
    assert_eq!(declined.status, ExitStatus::Failure);
    insta::assert_snapshot!("destroy_declined", seen(&declined.stderr, &repo()));
    assert!(
        declined
            .stderr
            .contains("will keep (DeletionPolicy: Retain), with their data: "),
        "{}",
        declined.stderr
    );
    assert!(
        declined
            .stderr
            .contains("storage: DataBucket (AWS::S3::Bucket)"),
        "{}",
        declined.stderr
    );
    assert!(
        declined
            .stderr
            .contains("destroy cancelled: nothing was deleted"),
        "{}",
        declined.stderr
    );
    assert_eq!(
        fake.stack("mlops-images-staging-storage")
            .expect("kept")
            .status
            .as_str(),
        "CREATE_COMPLETE"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_missing_saved_plan_and_an_unknown_allow_replace_are_named() {
    let fake = FakeCloudFormation::new();
    let missing = apply(&fake, &repo(), "build/ci/plan.json", |_| {}).await;
    assert_eq!(missing.status, ExitStatus::Failure);
    insta::assert_snapshot!("error_missing_saved_plan", seen(&missing.stderr, &repo()));
    assert!(
        missing.stderr.contains("build/ci/plan.json: no such file"),
        "{}",
        missing.stderr
    );
    let typo = apply(&fake, &repo(), "staging", |args| {
        args.allow_replace = vec!["DataBuckt".into()];
    })
    .await;
    assert_eq!(typo.status, ExitStatus::Failure);
    insta::assert_snapshot!("error_allow_replace_typo", seen(&typo.stderr, &repo()));
    assert!(
        typo.stderr
            .contains("--allow-replace DataBuckt: no resource of `staging` has that logical ID"),
        "{}",
        typo.stderr
    );
    assert!(
        typo.stderr.contains("did you mean `DataBucket`?"),
        "{}",
        typo.stderr
    );
    assert!(fake.stack("mlops-images-staging-storage").is_none());
}

#[tokio::test(flavor = "current_thread")]
async fn an_apply_ends_with_a_summary_a_person_reads() {
    let fake = FakeCloudFormation::new();
    fake.fail_next_execute(
        "mlops-images-staging-iam",
        "CodeBuildRole",
        "Role limit exceeded",
    );
    let failed = apply(&fake, &repo(), "staging", |_| {}).await;
    let summary = failed
        .stderr
        .split_once("\nApply failed:")
        .map(|(_, rest)| format!("Apply failed:{rest}"))
        .unwrap_or_else(|| panic!("no summary line:\n{}", failed.stderr));
    insta::assert_snapshot!("apply_failed_summary", summary);
    let rerun = apply(&fake, &repo(), "staging", |_| {}).await;
    // From the per-stack summary on: progress lines of concurrent stacks interleave.
    let (_, summary) = rerun
        .stderr
        .split_once("\nsummary:")
        .expect("the per-stack summary");
    insta::assert_snapshot!("apply_complete", seen(summary, &repo()));
    assert!(
        rerun
            .stderr
            .contains("Apply complete: 14 created, 0 updated, 1 unchanged, 0 failed (stacks)."),
        "{}",
        rerun.stderr
    );
    assert!(rerun.stderr.contains("  API: https://"), "{}", rerun.stderr);
    // The JSON result goes to stdout for scripts (stdout is not a terminal here).
    let report: serde_json::Value =
        serde_json::from_str(rerun.stdout.trim()).expect("the JSON report");
    assert_eq!(report["stacks"].as_array().map(Vec::len), Some(15));
}

#[tokio::test(flavor = "current_thread")]
async fn stack_selection_takes_ids_and_full_names() {
    let fake = FakeCloudFormation::new();
    let applied = apply(&fake, &repo(), "staging", |args| {
        args.stacks = vec!["storage".into(), "mlops-images-staging-iam".into()];
    })
    .await;
    assert_eq!(applied.status, ExitStatus::Success, "{}", applied.stderr);
    assert!(fake.stack("mlops-images-staging-iam").is_some());
    assert!(fake.stack("mlops-images-staging-monitoring").is_none());
}

#[tokio::test(flavor = "current_thread")]
async fn status_is_a_table_in_launch_order() {
    let fake = FakeCloudFormation::new();
    let applied = apply(&fake, &repo(), "staging", |args| {
        args.stacks = vec!["storage".into(), "iam".into()];
    })
    .await;
    assert_eq!(applied.status, ExitStatus::Success, "{}", applied.stderr);
    let args = mlops_infra::cli::StatusArgs {
        environment: "staging".into(),
        drift: false,
    };
    let status = capture("status", async |output, context| {
        deploy::status(&fake, &repo(), &args, output, context).await
    })
    .await;
    assert_eq!(status.status, ExitStatus::Success, "{}", status.stderr);
    // The in-memory CloudFormation's clock is deterministic, so the times are too.
    insta::assert_snapshot!("status_table", status.stdout);
}

#[tokio::test(flavor = "current_thread")]
async fn new_grants_need_confirmation() {
    let fake = FakeCloudFormation::new();
    let project = project_copy();
    let first = apply(&fake, project.path(), "staging", |_| {}).await;
    assert_eq!(first.status, ExitStatus::Success, "{}", first.stderr);
    edit(
        project.path(),
        "templates/iam.yaml.tera",
        "Action: [kms:Decrypt, kms:Encrypt, kms:GenerateDataKey, kms:DescribeKey]",
        "Action: [kms:Decrypt, kms:Encrypt, kms:GenerateDataKey, kms:DescribeKey, kms:ReEncryptFrom]",
    );
    let unattended = apply(&fake, project.path(), "staging", |args| args.yes = false).await;
    assert_eq!(unattended.status, ExitStatus::Failure);
    insta::assert_snapshot!(
        "error_new_grants_unattended",
        seen(&unattended.stderr, project.path())
    );
    assert!(
        unattended.stderr.contains(
            "grant new permissions (1 resource(s), listed above) and nobody can confirm here"
        ),
        "{}",
        unattended.stderr
    );
    let declined = common::capture::capture_answering("apply", false, async |output, context| {
        let args = ApplyArgs {
            target: "staging".into(),
            yes: false,
            allow_replace: Vec::new(),
            stacks: Vec::new(),
            concurrency: 3,
            revert_drift: false,
            output: mlops_infra::cli::OutputFormat::Text,
        };
        let platform = FakePlatform::new("222222222222");
        deploy::apply(&fake, &platform, project.path(), &args, output, context).await
    })
    .await;
    assert!(
        declined.stderr.contains("not applied"),
        "{}",
        declined.stderr
    );
    let confirmed = apply(&fake, project.path(), "staging", |_| {}).await;
    assert_eq!(
        confirmed.status,
        ExitStatus::Success,
        "{}",
        confirmed.stderr
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_bucket_kept_by_an_earlier_destroy_is_named_with_how_to_adopt_it() {
    let fake = FakeCloudFormation::new();
    fake.add_loose("AWS::S3::Bucket", "mlops-images-staging-data-222222222222");
    let planned = plan(&fake, &repo(), None).await;
    let document: serde_json::Value = serde_json::from_str(&planned.stdout).expect("json");
    let storage = document["stacks"]
        .as_array()
        .and_then(|stacks| stacks.iter().find(|stack| stack["id"] == "storage"))
        .expect("storage");
    let bucket = storage["resources"]
        .as_array()
        .and_then(|resources| resources.iter().find(|r| r["logical_id"] == "DataBucket"))
        .expect("DataBucket");
    assert!(
        bucket["notes"][0]
            .as_str()
            .is_some_and(|note| note.starts_with(
                "bucket mlops-images-staging-data-222222222222 already exists outside any stack"
            ) && note.contains("resource import")),
        "{bucket}"
    );
    let other = storage["resources"]
        .as_array()
        .and_then(|resources| {
            resources
                .iter()
                .find(|r| r["logical_id"] == "ArtifactsBucket")
        })
        .expect("ArtifactsBucket");
    assert!(other.get("notes").is_none(), "{other}");
}

fn count(calls: &[String], operation: &str) -> usize {
    calls.iter().filter(|call| *call == operation).count()
}

#[tokio::test(flavor = "current_thread")]
async fn a_plan_reads_only_the_templates_that_changed_since_the_last_apply() {
    let fake = FakeCloudFormation::new();
    let first = apply(&fake, &repo(), "staging", |_| {}).await;
    assert_eq!(first.status, ExitStatus::Success, "{}", first.stderr);
    // Stacks the plan found no trace of hold no leftover change sets, and their change set's
    // REVIEW_IN_PROGRESS is not news.
    assert_eq!(
        count(&fake.calls(), "ListChangeSets"),
        0,
        "{:?}",
        fake.calls()
    );
    assert!(
        !first.stderr.contains("REVIEW_IN_PROGRESS"),
        "{}",
        first.stderr
    );
    let record_url = mlops_infra::aws::template_url(
        "mlops-images-staging-artifacts-222222222222",
        mlops_infra::aws::fake::REGION,
        &mlops_infra::deployed_record::key("mlops-images-staging"),
    );
    let saved = fake.uploaded(&record_url).expect("apply saves the record");
    let stacks =
        serde_json::from_str::<serde_json::Value>(&plan(&fake, &repo(), None).await.stdout)
            .expect("json plan")["stacks"]
            .as_array()
            .expect("stacks")
            .len();
    assert_eq!(
        mlops_infra::deployed_record::Record::parse(saved.as_bytes()).len(),
        stacks,
        "{saved}"
    );

    // Unchanged since: the state of each stack says its template is the rendered one.
    fake.clear_calls();
    let clean = plan(&fake, &repo(), None).await;
    assert_eq!(clean.status, ExitStatus::Success, "{}", clean.stdout);
    let calls = fake.calls();
    assert_eq!(count(&calls, "GetTemplate"), 0, "{calls:?}");
    assert_eq!(count(&calls, "GetObject"), 1, "{calls:?}");

    // Updated by someone else: that one template is read, and the change shows.
    let name = "mlops-images-staging-monitoring";
    let deployed = fake.stack(name).expect("monitoring");
    let by_hand = deployed
        .template_body
        .replacen("RetentionInDays: 365", "RetentionInDays: 30", 1);
    assert_ne!(by_hand, deployed.template_body);
    fake.deploy(name, &by_hand, &deployed.parameters, &deployed.tags)
        .expect("update by hand");
    fake.clear_calls();
    let changed = plan(&fake, &repo(), None).await;
    assert_eq!(changed.status, ExitStatus::Changes, "{}", changed.stderr);
    let calls = fake.calls();
    assert_eq!(count(&calls, "GetTemplate"), 1, "{calls:?}");
    let planned: serde_json::Value = serde_json::from_str(&changed.stdout).expect("json plan");
    let updates: Vec<&str> = planned["stacks"]
        .as_array()
        .expect("stacks")
        .iter()
        .filter(|stack| stack["action"] != "no_change")
        .map(|stack| stack["id"].as_str().expect("id"))
        .collect();
    assert_eq!(updates, ["monitoring"]);

    // The apply that puts it back records it: the next plan reads no template again.
    let back = apply(&fake, &repo(), "staging", |_| {}).await;
    assert_eq!(back.status, ExitStatus::Success, "{}", back.stderr);
    fake.clear_calls();
    assert_eq!(plan(&fake, &repo(), None).await.status, ExitStatus::Success);
    assert_eq!(count(&fake.calls(), "GetTemplate"), 0, "{:?}", fake.calls());

    // A damaged record is no record: every template is read, the plan is the same.
    use mlops_infra::aws::CloudFormation;
    fake.upload_template(
        "mlops-images-staging-artifacts-222222222222",
        &mlops_infra::deployed_record::key("mlops-images-staging"),
        b"{not json",
    )
    .await
    .expect("overwrite");
    fake.clear_calls();
    let unread = plan(&fake, &repo(), None).await;
    assert_eq!(unread.status, ExitStatus::Success, "{}", unread.stdout);
    assert_eq!(
        count(&fake.calls(), "GetTemplate"),
        stacks,
        "{:?}",
        fake.calls()
    );
    // An apply with nothing to change saves it again.
    let again = apply(&fake, &repo(), "staging", |_| {}).await;
    assert!(
        again.stderr.contains("nothing to apply"),
        "{}",
        again.stderr
    );
    assert!(
        mlops_infra::deployed_record::Record::parse(
            fake.uploaded(&record_url).expect("record").as_bytes()
        )
        .len()
            == stacks
    );
}
