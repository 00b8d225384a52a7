//! Every AWS operation the SDK adapters (`sdk.rs`, `sdk_platform.rs`, `sdk_review.rs`) call: the IAM action it
//! needs, what it acts on, and the commands that make it. The permission analysis derives the
//! CodeBuild role's needs from the commands its builds run; a test reads the adapters' source
//! and fails when they call an operation this table does not list.

/// What an operation acts on, resolved per environment by the permission analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Needs no permission (`sts:GetCallerIdentity`).
    Nothing,
    /// Takes no resource ARN: `*`.
    Any,
    /// Each of the environment's stacks.
    Stacks,
    /// Objects under a prefix of the artifacts bucket.
    Artifacts(&'static str),
    /// The key that encrypts the buckets.
    BucketKey,
    /// The environment's model packages.
    ModelPackages,
    /// The environment's endpoints.
    Endpoints,
    /// The environment's release records in SSM (`/<project>/<env>/…`).
    Records,
    /// The CloudFormation service role, passed to CloudFormation.
    DeployRole,
    /// Anything else: pipelines, builds, roles the command names at run time.
    Named,
}

/// A command as the analysis knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Plan,
    Apply,
    Destroy,
    Status,
    Test,
    Models,
    Approve,
    Promote,
    Pipeline,
    CiRun,
    Doctor,
    /// `review`, run by a person with their own credentials (docs/review.md), never by CI.
    Review,
    /// Drift detection: `plan --refresh`, `status --drift`, `apply --revert-drift`.
    Drift,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// `service:Operation` as the SDK names it (`s3:HeadObject`).
    pub operation: &'static str,
    /// The IAM action that authorises it (`s3:GetObject`).
    pub action: &'static str,
    pub target: Target,
    pub commands: &'static [Command],
}

use Command::*;

const DEPLOY: &[Command] = &[Plan, Apply, Destroy, Status, Test, Promote];

pub const CALLS: &[Call] = &[
    Call {
        operation: "sts:GetCallerIdentity",
        action: "sts:GetCallerIdentity",
        target: Target::Nothing,
        commands: &[
            Plan, Apply, Destroy, Status, Test, Models, Approve, Promote, Pipeline, CiRun, Doctor,
            Review,
        ],
    },
    Call {
        operation: "cloudformation:DescribeStacks",
        action: "cloudformation:DescribeStacks",
        target: Target::Stacks,
        commands: DEPLOY,
    },
    Call {
        operation: "cloudformation:GetTemplate",
        action: "cloudformation:GetTemplate",
        target: Target::Stacks,
        commands: &[Plan, Apply, Promote],
    },
    Call {
        operation: "cloudformation:CreateChangeSet",
        action: "cloudformation:CreateChangeSet",
        target: Target::Stacks,
        commands: &[Plan, Apply, Promote],
    },
    Call {
        operation: "cloudformation:DescribeChangeSet",
        action: "cloudformation:DescribeChangeSet",
        target: Target::Stacks,
        commands: &[Plan, Apply, Promote],
    },
    Call {
        operation: "cloudformation:DeleteChangeSet",
        action: "cloudformation:DeleteChangeSet",
        target: Target::Stacks,
        commands: &[Plan, Apply, Promote],
    },
    Call {
        operation: "cloudformation:ExecuteChangeSet",
        action: "cloudformation:ExecuteChangeSet",
        target: Target::Stacks,
        commands: &[Apply, Promote],
    },
    Call {
        operation: "cloudformation:ListChangeSets",
        action: "cloudformation:ListChangeSets",
        target: Target::Stacks,
        commands: &[Apply, Promote],
    },
    Call {
        operation: "cloudformation:DescribeStackEvents",
        action: "cloudformation:DescribeStackEvents",
        target: Target::Stacks,
        commands: &[Apply, Destroy, Promote],
    },
    Call {
        operation: "cloudformation:SetStackPolicy",
        action: "cloudformation:SetStackPolicy",
        target: Target::Stacks,
        commands: &[Apply, Promote],
    },
    Call {
        operation: "cloudformation:UpdateTerminationProtection",
        action: "cloudformation:UpdateTerminationProtection",
        target: Target::Stacks,
        commands: &[Apply, Destroy, Promote],
    },
    Call {
        operation: "cloudformation:DeleteStack",
        action: "cloudformation:DeleteStack",
        target: Target::Stacks,
        // apply deletes a retired stack once everything moved out of it.
        commands: &[Apply, Destroy],
    },
    // Moving resources out of a stack an earlier layout had (`stacks::RETIRED`).
    Call {
        operation: "cloudformation:CreateStackRefactor",
        action: "cloudformation:CreateStackRefactor",
        target: Target::Stacks,
        commands: &[Apply],
    },
    Call {
        operation: "cloudformation:DescribeStackRefactor",
        action: "cloudformation:DescribeStackRefactor",
        target: Target::Stacks,
        commands: &[Apply],
    },
    Call {
        operation: "cloudformation:ExecuteStackRefactor",
        action: "cloudformation:ExecuteStackRefactor",
        target: Target::Stacks,
        commands: &[Apply],
    },
    // Change sets run as the service role: the caller passes it.
    Call {
        operation: "cloudformation:CreateChangeSet",
        action: "iam:PassRole",
        target: Target::DeployRole,
        commands: &[Apply, Promote],
    },
    Call {
        operation: "s3:HeadObject",
        action: "s3:GetObject",
        target: Target::Artifacts("code/"),
        commands: &[Plan, Apply],
    },
    // Only for named resources a stack is about to create; a refusal counts as "not ours",
    // so the CodeBuild role is not asked for them.
    Call {
        operation: "s3:HeadBucket",
        action: "s3:ListBucket",
        target: Target::Named,
        commands: &[Plan, Apply],
    },
    Call {
        operation: "sagemaker:DescribeModelPackageGroup",
        action: "sagemaker:DescribeModelPackageGroup",
        target: Target::Named,
        commands: &[Plan, Apply],
    },
    Call {
        operation: "logs:DescribeLogGroups",
        action: "logs:DescribeLogGroups",
        target: Target::Named,
        commands: &[Plan, Apply],
    },
    Call {
        operation: "s3:PutObject",
        action: "s3:PutObject",
        target: Target::Artifacts("code/"),
        commands: &[Apply],
    },
    // Templates over the inline limit, and the record of deployed templates.
    Call {
        operation: "s3:PutObject",
        action: "s3:PutObject",
        target: Target::Artifacts("cloudformation/"),
        commands: &[Apply],
    },
    Call {
        operation: "s3:GetObject",
        action: "s3:GetObject",
        target: Target::Artifacts("cloudformation/"),
        commands: &[Plan, Apply, Status],
    },
    Call {
        operation: "s3:GetObject",
        action: "kms:Decrypt",
        target: Target::BucketKey,
        commands: &[Plan, Apply, Status],
    },
    Call {
        operation: "s3:HeadObject",
        action: "s3:GetObject",
        target: Target::Artifacts("functions/"),
        commands: &[Plan, Apply],
    },
    Call {
        operation: "s3:PutObject",
        action: "s3:PutObject",
        target: Target::Artifacts("functions/"),
        commands: &[Apply],
    },
    Call {
        operation: "s3:PutObject",
        action: "s3:PutObject",
        target: Target::Artifacts("pipelines/"),
        commands: &[Apply],
    },
    Call {
        operation: "s3:PutObject",
        action: "kms:GenerateDataKey",
        target: Target::BucketKey,
        commands: &[Apply],
    },
    Call {
        operation: "s3:GetObject",
        action: "s3:GetObject",
        target: Target::Artifacts(""),
        commands: &[Models],
    },
    Call {
        operation: "s3:GetObject",
        action: "kms:Decrypt",
        target: Target::BucketKey,
        commands: &[Models],
    },
    Call {
        operation: "sagemaker:ListModelPackages",
        action: "sagemaker:ListModelPackages",
        target: Target::Any,
        commands: &[Plan, Apply, Models, Approve, Promote, Test],
    },
    Call {
        operation: "sagemaker:DescribeModelPackage",
        action: "sagemaker:DescribeModelPackage",
        target: Target::ModelPackages,
        commands: &[Plan, Apply, Models, Approve, Promote],
    },
    Call {
        operation: "sagemaker:UpdateModelPackage",
        action: "sagemaker:UpdateModelPackage",
        target: Target::ModelPackages,
        commands: &[Approve],
    },
    Call {
        operation: "sagemaker:DescribeEndpoint",
        action: "sagemaker:DescribeEndpoint",
        target: Target::Endpoints,
        commands: &[Test],
    },
    Call {
        operation: "sagemaker:InvokeEndpoint",
        action: "sagemaker:InvokeEndpoint",
        target: Target::Endpoints,
        commands: &[Test],
    },
    Call {
        operation: "sagemaker:StartPipelineExecution",
        action: "sagemaker:StartPipelineExecution",
        target: Target::Named,
        commands: &[Pipeline],
    },
    Call {
        operation: "sagemaker:ListPipelineExecutions",
        action: "sagemaker:ListPipelineExecutions",
        target: Target::Named,
        commands: &[Pipeline],
    },
    Call {
        operation: "ssm:GetParameter",
        action: "ssm:GetParameter",
        target: Target::Records,
        commands: &[Plan, Apply, Promote, Models],
    },
    Call {
        operation: "ssm:PutParameter",
        action: "ssm:PutParameter",
        target: Target::Records,
        commands: &[Test, Promote],
    },
    Call {
        operation: "codebuild:StartBuild",
        action: "codebuild:StartBuild",
        target: Target::Named,
        commands: &[CiRun],
    },
    Call {
        operation: "codebuild:BatchGetBuilds",
        action: "codebuild:BatchGetBuilds",
        target: Target::Named,
        commands: &[CiRun],
    },
    Call {
        operation: "logs:GetLogEvents",
        action: "logs:GetLogEvents",
        target: Target::Named,
        commands: &[CiRun],
    },
    Call {
        operation: "iam:GetRole",
        action: "iam:GetRole",
        target: Target::Named,
        commands: &[Doctor],
    },
    Call {
        operation: "iam:SimulatePrincipalPolicy",
        action: "iam:SimulatePrincipalPolicy",
        target: Target::Named,
        commands: &[Doctor],
    },
    Call {
        operation: "cloudformation:DescribeEvents",
        action: "cloudformation:DescribeEvents",
        target: Target::Stacks,
        commands: &[Plan, Apply, Promote],
    },
    // Drift detection reads each resource with the caller's own permissions, as CloudFormation
    // does: a person or role that runs it needs read access to what the stacks hold.
    Call {
        operation: "cloudformation:DetectStackDrift",
        action: "cloudformation:DetectStackDrift",
        target: Target::Stacks,
        commands: &[Drift],
    },
    Call {
        operation: "cloudformation:DescribeStackDriftDetectionStatus",
        action: "cloudformation:DescribeStackDriftDetectionStatus",
        target: Target::Any,
        commands: &[Drift],
    },
    Call {
        operation: "cloudformation:DescribeStackResourceDrifts",
        action: "cloudformation:DescribeStackResourceDrifts",
        target: Target::Stacks,
        commands: &[Drift],
    },
    // `review`: the queue in the data bucket, the photos' copies into raw data, the review log.
    Call {
        operation: "s3:ListObjectsV2",
        action: "s3:ListBucket",
        target: Target::Named,
        commands: &[Review],
    },
    Call {
        operation: "s3:GetObject",
        action: "s3:GetObject",
        target: Target::Named,
        commands: &[Review],
    },
    Call {
        operation: "s3:PutObject",
        action: "s3:PutObject",
        target: Target::Named,
        commands: &[Review],
    },
    Call {
        operation: "s3:CopyObject",
        action: "s3:PutObject",
        target: Target::Named,
        commands: &[Review],
    },
    Call {
        operation: "s3:DeleteObject",
        action: "s3:DeleteObject",
        target: Target::Named,
        commands: &[Review],
    },
    Call {
        operation: "sagemaker:DescribeModelPackage",
        action: "sagemaker:DescribeModelPackage",
        target: Target::ModelPackages,
        commands: &[Review],
    },
    Call {
        operation: "logs:CreateLogStream",
        action: "logs:CreateLogStream",
        target: Target::Named,
        commands: &[Review],
    },
    Call {
        operation: "logs:PutLogEvents",
        action: "logs:PutLogEvents",
        target: Target::Named,
        commands: &[Review],
    },
];

/// The commands the environment's CodeBuild projects run (`scripts/ci-build`): the
/// infrastructure build plans and applies; the model-deploy build applies, tests and lists
/// models. Promotion acts in the target account with that account's credentials.
pub const CI_BUILD_COMMANDS: &[Command] = &[Plan, Apply, Test, Models];

/// `create_change_set` → `CreateChangeSet`.
pub fn operation_name(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The adapters' clients, by field name, and the IAM service prefix of each.
    const CLIENTS: &[(&str, &str)] = &[
        ("cloudformation", "cloudformation"),
        ("s3", "s3"),
        ("sts", "sts"),
        ("sagemaker", "sagemaker"),
        ("runtime", "sagemaker"),
        ("ssm", "ssm"),
        ("codebuild", "codebuild"),
        ("logs", "logs"),
        ("iam", "iam"),
    ];

    /// `client.operation()` calls in an adapter's source, as `service:Operation`.
    fn operations(source: &str) -> Vec<String> {
        let mut found = Vec::new();
        let compact: String = source.split_whitespace().collect();
        for (field, service) in CLIENTS {
            // The STS client is optional in `sdk.rs`, so it is called through a binding.
            let mut prefixes = vec![format!("self.{field}.")];
            if *field == "sts" {
                prefixes.push("sts.".to_string());
            }
            for prefix in prefixes {
                let mut rest = compact.as_str();
                while let Some(start) = rest.find(&prefix) {
                    rest = &rest[start + prefix.len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    // `s3.build()` and the like configure a client; they are no operation.
                    let configures = matches!(name.as_str(), "build" | "clone" | "config");
                    if !name.is_empty() && !configures && rest[name.len()..].starts_with("()") {
                        found.push(format!("{service}:{}", operation_name(&name)));
                    }
                }
            }
        }
        found.sort();
        found.dedup();
        found
    }

    #[test]
    fn every_operation_the_adapters_call_is_in_the_table() {
        let sources = [
            include_str!("sdk.rs"),
            include_str!("sdk_platform.rs"),
            include_str!("sdk_review.rs"),
        ];
        let called: Vec<String> = sources.iter().flat_map(|s| operations(s)).collect();
        assert!(called.len() > 20, "the scan found the calls: {called:?}");
        for operation in &called {
            assert!(
                CALLS.iter().any(|call| call.operation == operation),
                "{operation} is called by an SDK adapter but missing from src/aws/calls.rs"
            );
        }
    }

    #[test]
    fn the_scan_sees_a_call_split_over_lines() {
        let source = "self\n    .cloudformation\n    .describe_stacks()\n    .send()";
        assert_eq!(operations(source), vec!["cloudformation:DescribeStacks"]);
        assert_eq!(operation_name("head_object"), "HeadObject");
    }
}
