//! The permission analysis `validate` runs offline: for every role the templates define, what
//! it must be allowed to do (`requirements`), checked against its policies as IAM evaluates
//! them (`policy`). Findings name the role, the action, the resource ARN, what needs it, and
//! the fix.

pub mod data;
pub mod pipeline;
pub mod policy;
pub mod requirements;
pub mod resolve;
pub mod retrain;
pub mod reviewer;
pub mod roles;
pub mod router;

use crate::config::Environment;
use crate::render::RenderedStack;
use crate::validate::{Diagnostic, Severity};

use policy::{Decision, Request, evaluate_bounded};
use requirements::Requirement;
use resolve::Resolver;
use roles::Role;

/// One thing a role must be able to do and, per the analysis, cannot (or may not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The stack defining the role.
    pub stack: String,
    /// The role's logical ID.
    pub role: String,
    pub action: String,
    pub resource: String,
    /// What needs it: `registry: ModelPackageGroup (AWS::SageMaker::ModelPackageGroup, create)`.
    pub needed_by: String,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No statement allows it.
    NotAllowed,
    /// A Deny statement refuses it.
    Denied(Option<String>),
    /// The answer hangs on what the analysis cannot evaluate offline.
    Undecided(String),
    /// The role the requirement names is not defined by any template.
    UnknownRole,
}

/// Runs the analysis over an environment's rendered stacks.
pub fn analyse(environment: &Environment, stacks: &[RenderedStack]) -> Vec<Finding> {
    let resolver = Resolver::new(environment, stacks);
    let roles = roles::roles(&resolver);
    let requirements = requirements::requirements(&resolver);
    check(&roles, &requirements)
}

/// Checks each requirement against the role it names.
pub fn check(roles: &[Role], requirements: &[Requirement]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for requirement in requirements {
        let Some(role) = roles.iter().find(|role| role.arn == requirement.role_arn) else {
            findings.push(Finding {
                stack: String::new(),
                role: requirement.role_arn.clone(),
                action: requirement.action.clone(),
                resource: requirement.resource.clone(),
                needed_by: requirement.needed_by.clone(),
                problem: Problem::UnknownRole,
            });
            continue;
        };
        let request = Request {
            action: requirement.action.clone(),
            resource: requirement.resource.clone(),
            context: requirement.context.clone(),
        };
        let problem = match evaluate_bounded(&role.policies, role.boundary.as_ref(), &request) {
            Decision::Allowed => {
                if let Some(boundary) = &role.unreadable_boundary {
                    Problem::Undecided(format!(
                        "the permissions boundary {boundary} cannot be read offline"
                    ))
                } else {
                    continue;
                }
            }
            Decision::ExplicitDeny(sid) => Problem::Denied(sid),
            Decision::ImplicitDeny if !role.managed_policies.is_empty() => {
                Problem::Undecided(format!(
                    "only the managed policies {} could allow it, and they cannot be read offline",
                    role.managed_policies.join(", ")
                ))
            }
            Decision::ImplicitDeny => Problem::NotAllowed,
            Decision::Undecided(keys) => Problem::Undecided(format!(
                "it depends on condition keys the analysis cannot evaluate: {}",
                keys.join(", ")
            )),
        };
        findings.push(Finding {
            stack: role.stack.clone(),
            role: role.logical_id.clone(),
            action: requirement.action.clone(),
            resource: requirement.resource.clone(),
            needed_by: requirement.needed_by.clone(),
            problem,
        });
    }
    findings
}

/// How much the analysis looked at, for `validate -v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    pub roles: usize,
    pub requirements: usize,
}

/// The analysis as `validate` diagnostics, with what it covered.
pub fn checked(environment: &Environment, stacks: &[RenderedStack]) -> (Vec<Diagnostic>, Coverage) {
    let resolver = Resolver::new(environment, stacks);
    let roles = roles::roles(&resolver);
    let requirements = requirements::requirements(&resolver);
    let coverage = Coverage {
        roles: roles.len(),
        requirements: requirements.len(),
    };
    (to_diagnostics(check(&roles, &requirements)), coverage)
}

/// The findings as `validate` diagnostics: errors for what IAM would refuse, notes for what
/// cannot be decided offline.
pub fn diagnostics(environment: &Environment, stacks: &[RenderedStack]) -> Vec<Diagnostic> {
    checked(environment, stacks).0
}

fn to_diagnostics(findings: Vec<Finding>) -> Vec<Diagnostic> {
    findings
        .into_iter()
        .map(|finding| {
            let (severity, message, hint) = match &finding.problem {
                Problem::NotAllowed => (
                    Severity::Error,
                    format!(
                        "role {} is not allowed {} on {} (needed by {})",
                        finding.role, finding.action, finding.resource, finding.needed_by
                    ),
                    format!(
                        "allow `{}` on `{}` in {}'s policies (templates/{}.yaml.tera)",
                        finding.action, finding.resource, finding.role, finding.stack
                    ),
                ),
                Problem::Denied(sid) => (
                    Severity::Error,
                    format!(
                        "role {} is denied {} on {} by statement {} (needed by {})",
                        finding.role,
                        finding.action,
                        finding.resource,
                        sid.as_deref().unwrap_or("without a Sid"),
                        finding.needed_by
                    ),
                    "narrow the Deny statement or stop needing the action".to_string(),
                ),
                Problem::Undecided(why) => (
                    Severity::Note,
                    format!(
                        "cannot tell whether role {} may {} on {} (needed by {}): {why}",
                        finding.role, finding.action, finding.resource, finding.needed_by
                    ),
                    "check it with `mlops-infra doctor` against the deployed roles".to_string(),
                ),
                Problem::UnknownRole => (
                    Severity::Error,
                    format!(
                        "{} needs role {} to allow {} on {}, but no template defines that role",
                        finding.needed_by, finding.role, finding.action, finding.resource
                    ),
                    "define the role in the iam stack or point the resource at one that is"
                        .to_string(),
                ),
            };
            Diagnostic {
                severity,
                stack: if finding.stack.is_empty() {
                    "iam".to_string()
                } else {
                    finding.stack.clone()
                },
                location: (!finding.stack.is_empty()).then(|| finding.role.clone()),
                path: Some("Properties.Policies".to_string()),
                message,
                hint: Some(hint),
            }
        })
        .collect()
}
