//! The release commands against the in-memory CloudFormation and platform: registry
//! decisions, serving choices, acceptance tests (including what the local emulator cannot
//! do: a slow endpoint), promotion's refusals, the manual pipeline trigger, `ci run` and
//! `doctor`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::capture::{Captured as Run, capture};
use common::{edit, project_copy, repo};
use mlops_infra::aws::CloudFormation;
use mlops_infra::aws::fake::FakeCloudFormation;
use mlops_infra::aws::fake_platform::{FakePlatform, approve};
use mlops_infra::aws::platform::Platform;
use mlops_infra::cli::{
    ApproveArgs, CiRunArgs, EnvironmentArgs, MonitorArgs, PipelineStartArgs, PlanArgs, PlanFormat,
    PromoteArgs, RejectArgs, TestArgs,
};
use mlops_infra::commands::acceptance::{self, Side};
use mlops_infra::commands::deploy;
use mlops_infra::commands::{operate, registry};
use mlops_infra::error::ExitStatus;

const STAGING: &str = "222222222222";
const PROD: &str = "333333333333";
fn apply_args(environment: &str) -> mlops_infra::cli::ApplyArgs {
    common::apply_args(environment)
}

async fn apply(
    fake: &FakeCloudFormation,
    platform: &FakePlatform,
    project: &Path,
    env: &str,
) -> Run {
    let args = apply_args(env);
    capture("test", async |output, context| {
        deploy::apply(fake, platform, project, &args, output, context).await
    })
    .await
}

async fn plan_text(fake: &FakeCloudFormation, platform: &FakePlatform, env: &str) -> Run {
    let args = PlanArgs {
        environment: env.into(),
        output: PlanFormat::Text,
        detailed_exitcode: true,
        stacks: Vec::new(),
        out: None,
        refresh: false,
        revert_drift: false,
    };
    capture("test", async |output, context| {
        deploy::plan(fake, platform, &repo(), &args, output, context).await
    })
    .await
}

async fn test_env(
    fake: &FakeCloudFormation,
    platform: &FakePlatform,
    project: &Path,
    model: &str,
) -> Run {
    let args = TestArgs {
        environment: "staging".into(),
        model: Some(model.into()),
    };
    capture("test", async |output, context| {
        acceptance::test(fake, platform, project, &args, output, context).await
    })
    .await
}

fn probabilities(classes: usize) -> String {
    let mut values = vec![0.0; classes];
    values[0] = 1.0;
    serde_json::to_string(&values).expect("json")
}

/// Staging applied, with `trees` serving an approved package whose endpoint answers.
async fn staging_serving_trees() -> (FakeCloudFormation, FakePlatform, String) {
    let fake = FakeCloudFormation::new();
    let platform = FakePlatform::new(STAGING);
    let arn = platform.register("mlops-images-staging-trees", None);
    approve(&platform, &arn).await;
    let applied = apply(&fake, &platform, &repo(), "staging").await;
    assert_eq!(applied.status, ExitStatus::Success, "{}", applied.stderr);
    platform.set_endpoint(
        "mlops-images-staging-trees",
        "InService",
        &probabilities(40),
        Duration::ZERO,
    );
    (fake, platform, arn)
}

#[tokio::test(flavor = "current_thread")]
async fn approve_takes_the_newest_pending_package_and_reject_needs_a_reason() {
    let platform = FakePlatform::new(STAGING);
    let first = platform.register("mlops-images-staging-trees", None);
    let second = platform.register("mlops-images-staging-trees", None);
    let args = ApproveArgs {
        environment: "staging".into(),
        model: "trees".into(),
        version: None,
        reason: "good".into(),
    };
    let approved = capture("test", async |output, _| {
        registry::approve(&platform, &repo(), &args, output).await
    })
    .await;
    assert_eq!(approved.status, ExitStatus::Success, "{}", approved.stderr);
    assert!(
        approved
            .stderr
            .contains("trees version 2: PendingManualApproval → Approved"),
        "{}",
        approved.stderr
    );
    assert_eq!(platform.approval(&second).as_deref(), Some("Approved"));
    assert_eq!(
        platform.approval(&first).as_deref(),
        Some("PendingManualApproval")
    );

    let reject = RejectArgs {
        environment: "staging".into(),
        model: "trees".into(),
        version: Some(1),
        reason: " ".into(),
    };
    let refused = capture("test", async |output, _| {
        registry::reject(&platform, &repo(), &reject, output).await
    })
    .await;
    assert_eq!(refused.status, ExitStatus::Failure);
    assert!(
        refused.stderr.contains("a rejection needs a reason"),
        "{}",
        refused.stderr
    );

    let typo = ApproveArgs {
        environment: "staging".into(),
        model: "tres".into(),
        version: None,
        reason: "x".into(),
    };
    let unknown = capture("test", async |output, _| {
        registry::approve(&platform, &repo(), &typo, output).await
    })
    .await;
    assert!(
        unknown
            .stderr
            .contains("environment `staging` has no model `tres`"),
        "{}",
        unknown.stderr
    );
    assert!(
        unknown.stderr.contains("did you mean `trees`?"),
        "{}",
        unknown.stderr
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_pinned_version_must_be_approved() {
    let fake = FakeCloudFormation::new();
    let platform = FakePlatform::new(STAGING);
    platform.register("mlops-images-staging-trees", None);
    let project = project_copy();
    edit(
        project.path(),
        "environments/staging.yaml",
        "    num_classes: 40\n",
        "    num_classes: 40\n    serving: 1\n",
    );
    let run = apply(&fake, &platform, project.path(), "staging").await;
    assert_eq!(run.status, ExitStatus::Failure);
    assert!(
        run.stderr.contains(
            "model `trees` serves version 1, which is PendingManualApproval, not Approved"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("mlops-infra approve staging trees 1"),
        "{}",
        run.stderr
    );
    assert!(
        fake.calls().iter().all(|call| !call.contains("ChangeSet")),
        "nothing applied"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_plan_shows_the_newly_approved_package() {
    let (fake, platform, first) = staging_serving_trees().await;
    let clean = plan_text(&fake, &platform, "staging").await;
    assert_eq!(clean.status, ExitStatus::Success, "{}", clean.stdout);
    let second = platform.register("mlops-images-staging-trees", None);
    approve(&platform, &second).await;
    let switch = plan_text(&fake, &platform, "staging").await;
    assert_eq!(switch.status, ExitStatus::Changes);
    assert!(
        switch.stdout.contains(&format!(
            "parameter ModelPackageArn: {first} → {second} ← latest-approved: version 2"
        )),
        "{}",
        switch.stdout
    );
}

#[tokio::test(flavor = "current_thread")]
async fn acceptance_checks_answers_and_latency_and_records_the_result() {
    let (fake, platform, arn) = staging_serving_trees().await;
    let project = project_copy();
    let passed = test_env(&fake, &platform, project.path(), "trees").await;
    assert_eq!(
        passed.status,
        ExitStatus::Success,
        "{}{}",
        passed.stdout,
        passed.stderr
    );
    assert!(
        passed
            .stdout
            .contains("trees            PASSED   2 sample(s)"),
        "{}",
        passed.stdout
    );
    let invocations = platform.invocations();
    assert_eq!(invocations.len(), 2);
    assert!(invocations.iter().all(|(endpoint, content_type, length)| {
        endpoint == "mlops-images-staging-trees" && content_type == "image/jpeg" && *length > 1000
    }));
    let record: serde_json::Value =
        serde_json::from_str(&platform.parameters()["/mlops-images/staging/acceptance/trees"])
            .expect("record");
    assert_eq!(record["passed"], true);
    assert_eq!(record["package_arn"], arn.as_str());
    assert_eq!(record["tested_at"], "2026-11-25T10:00:00Z");

    // The emulator cannot be slow on request; the fake can.
    edit(
        project.path(),
        "environments/staging.yaml",
        "extends: _common\n",
        "extends: _common\nacceptance:\n  max_latency_milliseconds: 20\n",
    );
    platform.set_endpoint(
        "mlops-images-staging-trees",
        "InService",
        &probabilities(40),
        Duration::from_millis(60),
    );
    let slow = test_env(&fake, &platform, project.path(), "trees").await;
    assert_eq!(slow.status, ExitStatus::Failure);
    assert!(
        slow.stdout.contains("above the 20 ms limit"),
        "{}",
        slow.stdout
    );
    let record: serde_json::Value =
        serde_json::from_str(&platform.parameters()["/mlops-images/staging/acceptance/trees"])
            .expect("record");
    assert_eq!(record["passed"], false);

    platform.set_endpoint(
        "mlops-images-staging-trees",
        "Updating",
        "[]",
        Duration::ZERO,
    );
    let updating = test_env(&fake, &platform, project.path(), "trees").await;
    assert!(
        updating
            .stdout
            .contains("endpoint mlops-images-staging-trees is Updating"),
        "{}",
        updating.stdout
    );

    let nothing = test_env(&fake, &platform, project.path(), "plants").await;
    assert_eq!(nothing.status, ExitStatus::Failure);
    assert!(
        nothing.stdout.contains("plants           SKIPPED"),
        "{}",
        nothing.stdout
    );
}

async fn promote(
    staging: (&FakeCloudFormation, &FakePlatform),
    prod: (&FakeCloudFormation, &FakePlatform),
    project: &Path,
) -> Run {
    let args = PromoteArgs {
        model: "trees".into(),
        from: "staging".into(),
        to: "prod".into(),
        yes: true,
    };
    capture("test", async |output, context| {
        let from = Side {
            client: staging.0,
            platform: staging.1,
        };
        let to = Side {
            client: prod.0,
            platform: prod.1,
        };
        acceptance::promote(from, to, project, &args, output, context).await
    })
    .await
}

#[tokio::test(flavor = "current_thread")]
async fn promotion_needs_an_approved_tested_package_and_a_target_that_takes_it() {
    let (staging, staging_platform, arn) = staging_serving_trees().await;
    let prod = FakeCloudFormation::new();
    let prod_platform = FakePlatform::new(PROD);
    let project = project_copy();
    let applied = apply(&prod, &prod_platform, project.path(), "prod").await;
    assert_eq!(applied.status, ExitStatus::Success, "{}", applied.stderr);

    let untested = promote(
        (&staging, &staging_platform),
        (&prod, &prod_platform),
        project.path(),
    )
    .await;
    assert_eq!(untested.status, ExitStatus::Failure);
    assert!(
        untested
            .stderr
            .contains("trees version 1 has not been tested on `staging`"),
        "{}",
        untested.stderr
    );
    assert!(
        untested
            .stderr
            .contains("mlops-infra test staging --model trees"),
        "{}",
        untested.stderr
    );

    // Tested, but on a package the endpoint no longer serves.
    staging_platform.set_parameter(
        "/mlops-images/staging/acceptance/trees",
        &serde_json::json!({"endpoint": "e", "package_arn": "arn:old", "passed": true,
            "tested_at": "t", "samples": 2, "slowest_milliseconds": 1,
            "max_latency_milliseconds": 2000, "failures": []})
        .to_string(),
    );
    let stale = promote(
        (&staging, &staging_platform),
        (&prod, &prod_platform),
        project.path(),
    )
    .await;
    assert!(
        stale
            .stderr
            .contains("the last test on `staging` was of another package (arn:old)"),
        "{}",
        stale.stderr
    );

    assert_eq!(
        test_env(&staging, &staging_platform, project.path(), "trees")
            .await
            .status,
        ExitStatus::Success
    );
    // A target serving `latest-approved` does not take promotions.
    let other = project_copy();
    edit(
        other.path(),
        "environments/prod.yaml",
        "  serving: promoted\n",
        "",
    );
    let refused = promote(
        (&staging, &staging_platform),
        (&prod, &prod_platform),
        other.path(),
    )
    .await;
    assert!(
        refused
            .stderr
            .contains("model `trees` on `prod` serves latest-approved, not promoted packages"),
        "{}",
        refused.stderr
    );

    // Answering "no" leaves prod as it was: no record, so no later apply switches it.
    let declined_args = PromoteArgs {
        model: "trees".into(),
        from: "staging".into(),
        to: "prod".into(),
        yes: false,
    };
    let declined = common::capture::capture_answering("test", false, async |output, context| {
        let from = Side {
            client: &staging,
            platform: &staging_platform,
        };
        let to = Side {
            client: &prod,
            platform: &prod_platform,
        };
        acceptance::promote(from, to, project.path(), &declined_args, output, context).await
    })
    .await;
    assert_eq!(declined.status, ExitStatus::Failure);
    insta::assert_snapshot!(
        "promote_declined",
        common::seen(&declined.stderr, project.path())
    );
    assert!(
        declined
            .stderr
            .contains("promotion cancelled: nothing was recorded"),
        "{}",
        declined.stderr
    );
    assert!(
        !prod_platform
            .parameters()
            .contains_key("/mlops-images/prod/promoted/trees")
    );

    let promoted = promote(
        (&staging, &staging_platform),
        (&prod, &prod_platform),
        project.path(),
    )
    .await;
    assert_eq!(promoted.status, ExitStatus::Success, "{}", promoted.stderr);
    let record: serde_json::Value =
        serde_json::from_str(&prod_platform.parameters()["/mlops-images/prod/promoted/trees"])
            .expect("record");
    assert_eq!(record["package_arn"], arn.as_str());
    assert_eq!(record["from"], "staging");
    let endpoint = prod
        .stack("mlops-images-prod-endpoint-trees")
        .expect("prod endpoint stack");
    assert_eq!(endpoint.parameters["ModelPackageArn"], arn);
    // Only that endpoint was applied.
    let plants = prod
        .stack("mlops-images-prod-endpoint-plants")
        .expect("prod plants endpoint stack");
    assert_eq!(plants.parameters["ModelPackageArn"], "");

    // A rejected package is not promoted again.
    staging_platform
        .set_approval(&arn, "Rejected", "regression found")
        .await
        .expect("reject");
    let rejected = promote(
        (&staging, &staging_platform),
        (&prod, &prod_platform),
        project.path(),
    )
    .await;
    assert!(
        rejected
            .stderr
            .contains("trees version 1 on `staging` is Rejected, not Approved"),
        "{}",
        rejected.stderr
    );
}

#[tokio::test(flavor = "current_thread")]
async fn pipelines_start_with_declared_parameters_only() {
    let platform = FakePlatform::new(STAGING);
    platform.add_pipeline("mlops-images-staging-trees");
    let start = |params: Vec<&str>| PipelineStartArgs {
        environment: "staging".into(),
        model: "trees".into(),
        params: params.into_iter().map(str::to_string).collect(),
    };
    let good = start(vec![
        "InputDataUri=s3://data/raw/trees/2026-11/",
        "AccuracyThreshold=0.9",
    ]);
    let run = capture("test", async |output, _| {
        operate::pipeline_start(&platform, &repo(), &good, output).await
    })
    .await;
    assert_eq!(run.status, ExitStatus::Success, "{}", run.stderr);
    assert!(run.stdout.starts_with(
        "arn:aws:sagemaker:eu-west-1:222222222222:pipeline/mlops-images-staging-trees/execution/"
    ));
    assert_eq!(
        platform.pipeline_runs("mlops-images-staging-trees"),
        [vec![
            (
                "InputDataUri".to_string(),
                "s3://data/raw/trees/2026-11/".to_string()
            ),
            ("AccuracyThreshold".to_string(), "0.9".to_string()),
        ]]
    );
    let typo = start(vec!["InputDataURI=s3://x/"]);
    let refused = capture("test", async |output, _| {
        operate::pipeline_start(&platform, &repo(), &typo, output).await
    })
    .await;
    assert_eq!(refused.status, ExitStatus::Failure);
    assert!(
        refused.stderr.contains("did you mean `InputDataUri`?"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        platform.pipeline_runs("mlops-images-staging-trees").len(),
        1
    );
}

#[tokio::test(flavor = "current_thread")]
async fn ci_run_follows_the_build_and_exits_with_its_result() {
    let platform = FakePlatform::new(STAGING);
    let args = CiRunArgs {
        environment: "staging".into(),
        no_follow: false,
    };
    let run = capture("test", async |output, context| {
        operate::ci_run(&platform, &repo(), &args, output, context).await
    })
    .await;
    assert_eq!(run.status, ExitStatus::Success, "{}", run.stderr);
    assert_eq!(
        platform.builds_started()[0].0,
        "mlops-images-staging-infrastructure"
    );
    let phases: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.starts_with("phase "))
        .collect();
    assert_eq!(phases.len(), 8, "{}", run.stderr);
    assert!(
        phases[6].starts_with("phase BUILD") && phases[6].ends_with("SUCCEEDED (1 s)"),
        "{phases:?}"
    );
    assert!(
        run.stdout.contains("[Container] Phase complete: BUILD"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .ends_with("build mlops-images-staging-infrastructure:build-1: SUCCEEDED\n"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "current_thread")]
async fn doctor_names_what_stops_a_deploy() {
    let platform = FakePlatform::new(STAGING);
    platform.add_role("mlops-images-staging-cloudformation");
    platform.add_role("mlops-images-staging-pipeline-execution");
    platform.deny("cloudformation:ExecuteChangeSet");
    platform.deny_to_role(
        "mlops-images-staging-cloudformation",
        "sagemaker:GetModelPackageGroupPolicy",
    );
    let args = EnvironmentArgs {
        environment: "staging".into(),
    };
    let run = capture("test", async |output, _| {
        operate::doctor(&platform, &repo(), &args, output).await
    })
    .await;
    assert_eq!(run.status, ExitStatus::Failure);
    assert!(
        run.stdout
            .contains("ok       account 222222222222 matches `account_id`"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("ok       role mlops-images-staging-cloudformation exists"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("warning  role mlops-images-staging-codebuild does not exist yet"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("problem  arn:aws:iam::222222222222:role/deployer may not call: cloudformation:ExecuteChangeSet"),
        "{}",
        run.stdout
    );
    // The deployed roles are simulated against what the permission analysis says they need.
    assert!(
        run.stdout
            .lines()
            .any(|line| line.starts_with(
                "problem  role mlops-images-staging-cloudformation as deployed may not: \
                 sagemaker:GetModelPackageGroupPolicy on"
            ) && line.contains(
                "sagemaker:GetModelPackageGroupPolicy on \
                 arn:aws:sagemaker:eu-west-1:222222222222:model-package-group/mlops-images-staging-plants"
            )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("fix: apply the iam stack (`mlops-infra apply staging --stack iam`)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("ok       role mlops-images-staging-pipeline-execution may do the"),
        "{}",
        run.stdout
    );

    let elsewhere = FakePlatform::new(PROD);
    let wrong = capture("test", async |output, _| {
        operate::doctor(&elsewhere, &repo(), &args, output).await
    })
    .await;
    assert!(wrong.stdout.contains("problem  the credentials are for account 333333333333, the environment is in 222222222222"), "{}", wrong.stdout);
}

#[tokio::test(flavor = "current_thread")]
async fn monitor_shows_each_models_latest_report() {
    let platform = FakePlatform::new(STAGING);
    let report = serde_json::json!({
        "model": "trees", "environment": "staging",
        "package": "arn:aws:sagemaker:eu-west-1:222222222222:model-package/mlops-images-staging-trees/2",
        "window": {"start": "2026-11-30T10:00:00Z", "end": "2026-12-01T10:00:00Z"},
        "requests": 1200,
        "malformed": {"count": 0, "examples": []},
        "confidence": {"mean": 0.64},
        "low_confidence": {"threshold": 0.6, "count": 480, "share": 0.4},
        "drift": {"status": "drift", "psi": 0.41, "baseline": true, "threshold": 0.2}
    });
    platform.put_object(
        "s3://mlops-images-staging-artifacts-222222222222/monitoring/trees/latest.json",
        &report.to_string(),
    );
    let args = MonitorArgs {
        environment: "staging".into(),
        model: None,
        output: mlops_infra::cli::OutputFormat::Text,
    };
    let shown = capture("monitor", async |output, _| {
        mlops_infra::commands::monitor::monitor(&platform, &repo(), &args, output).await
    })
    .await;
    assert_eq!(shown.status, ExitStatus::Success, "{}", shown.stderr);
    insta::assert_snapshot!("monitor_table", shown.stdout);
    let json_args = MonitorArgs {
        output: mlops_infra::cli::OutputFormat::Json,
        model: Some("trees".into()),
        ..args
    };
    let json = capture("monitor", async |output, _| {
        mlops_infra::commands::monitor::monitor(&platform, &repo(), &json_args, output).await
    })
    .await;
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(document["trees"], report);
}

#[tokio::test(flavor = "current_thread")]
async fn a_whole_environment_test_also_goes_through_the_router() {
    let (fake, platform) = (FakeCloudFormation::new(), FakePlatform::new(STAGING));
    let plants = platform.register("mlops-images-staging-plants", None);
    platform.set_classes(&plants, &["trees", "flowers", "grasses"]);
    approve(&platform, &plants).await;
    let applied = apply(&fake, &platform, &repo(), "staging").await;
    assert_eq!(applied.status, ExitStatus::Success, "{}", applied.stderr);
    platform.set_endpoint(
        "mlops-images-staging-plants",
        "InService",
        &probabilities(3),
        Duration::ZERO,
    );
    let url = fake
        .describe_stack("mlops-images-staging-router-plants")
        .await
        .expect("described")
        .expect("deployed")
        .outputs["IdentifyUrl"]
        .clone();
    let whole = TestArgs {
        environment: "staging".into(),
        model: None,
    };
    let run = async || {
        capture("test", async |output, context| {
            acceptance::test(&fake, &platform, &repo(), &whole, output, context).await
        })
        .await
    };
    platform.set_api(
        &url,
        200,
        r#"{"subgroup": {"name": "trees"}, "species": {"name": "oak"}}"#,
    );
    let passed = run().await;
    assert_eq!(passed.status, ExitStatus::Success, "{}", passed.stderr);
    assert!(
        passed
            .stdout
            .contains("router-plants    PASSED   2 sample(s) through POST /identify"),
        "{}",
        passed.stdout
    );
    assert_eq!(platform.posts().len(), 2);

    platform.set_api(&url, 500, r#"{"error": "internal", "message": "boom"}"#);
    let failed = run().await;
    assert_eq!(failed.status, ExitStatus::Failure);
    assert!(
        failed.stdout.contains("router-plants    FAILED")
            && failed
                .stdout
                .contains(r#"500 {"error": "internal", "message": "boom"}"#),
        "{}",
        failed.stdout
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_protected_endpoint_update_is_watched_by_its_alarms() {
    let (fake, platform) = (FakeCloudFormation::new(), FakePlatform::new(STAGING));
    let project = project_copy();
    edit(
        project.path(),
        "environments/staging.yaml",
        "extends: _common\n",
        "extends: _common\nprotected: true\n",
    );
    edit(
        project.path(),
        "environments/staging.yaml",
        "\nendpoint:\n",
        "\nendpoint:\n  rollback_monitoring_minutes: 15\n",
    );
    let first = platform.register("mlops-images-staging-trees", None);
    approve(&platform, &first).await;
    let applied = apply(&fake, &platform, project.path(), "staging").await;
    assert_eq!(applied.status, ExitStatus::Success, "{}", applied.stderr);
    // Created with the endpoint: its alarms did not exist yet, so nothing watches the create.
    let stack = "mlops-images-staging-endpoint-trees";
    assert_eq!(fake.rollbacks(stack), []);

    let second = platform.register("mlops-images-staging-trees", None);
    approve(&platform, &second).await;
    let planned = capture("test", async |output, context| {
        let args = PlanArgs {
            environment: "staging".into(),
            output: PlanFormat::Text,
            detailed_exitcode: true,
            stacks: Vec::new(),
            out: None,
            refresh: false,
            revert_drift: false,
        };
        deploy::plan(&fake, &platform, project.path(), &args, output, context).await
    })
    .await;
    assert!(
        planned.stdout.contains(
            "    CloudFormation rolls the update back if mlops-images-staging-trees-5xx-errors or mlops-images-staging-trees-model-latency fires during it or within 15 min after"
        ),
        "{}",
        planned.stdout
    );
    let updated = apply(&fake, &platform, project.path(), "staging").await;
    assert_eq!(updated.status, ExitStatus::Success, "{}", updated.stderr);
    let rollbacks = fake.rollbacks(stack);
    assert_eq!(rollbacks.len(), 1, "{rollbacks:?}");
    assert_eq!(rollbacks[0].monitoring_minutes, 15);
    assert_eq!(
        rollbacks[0].alarm_arns,
        [
            "arn:aws:cloudwatch:eu-west-1:222222222222:alarm:mlops-images-staging-trees-5xx-errors",
            "arn:aws:cloudwatch:eu-west-1:222222222222:alarm:mlops-images-staging-trees-model-latency"
        ]
    );
}
