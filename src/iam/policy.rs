//! IAM policy documents and their evaluation for one request, as IAM decides: an explicit
//! Deny wins, then an Allow, else the request is implicitly denied. Actions and resources
//! match `*` and `?` wildcards (actions case-insensitively); a condition is evaluated when the
//! request's context holds its key, and reported as undecided otherwise, never passed.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Action` or `NotAction` (likewise `Resource` or `NotResource`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patterns {
    Only(Vec<String>),
    Not(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// As written: `StringEquals`, `ArnLike`, `ForAnyValue:StringLike`, `BoolIfExists`, …
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub actions: Patterns,
    pub resources: Patterns,
    pub conditions: Vec<Condition>,
}

/// One policy of a role: an inline policy, or a permissions boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub statements: Vec<Statement>,
}

/// What is asked: an action on a resource ARN (`*` for actions without resource-level
/// permissions), with the condition keys the request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub action: String,
    pub resource: String,
    pub context: BTreeMap<String, String>,
}

impl Request {
    pub fn new(action: &str, resource: &str) -> Request {
        Request {
            action: action.to_string(),
            resource: resource.to_string(),
            context: BTreeMap::new(),
        }
    }

    pub fn with(mut self, key: &str, value: &str) -> Request {
        self.context.insert(key.to_string(), value.to_string());
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Denied by a Deny statement (its sid, if any).
    ExplicitDeny(Option<String>),
    /// No statement allows it.
    ImplicitDeny,
    /// The outcome hangs on conditions whose keys the analysis does not know.
    Undecided(Vec<String>),
}

/// Evaluates identity policies; the request must be allowed by one of them.
pub fn evaluate(policies: &[Policy], request: &Request) -> Decision {
    let mut allowed = false;
    let mut unknown: Vec<String> = Vec::new();
    let mut denied_maybe = false;
    for statement in policies.iter().flat_map(|policy| &policy.statements) {
        if !statement.applies(request) {
            continue;
        }
        match (statement.effect, statement.conditions_hold(request)) {
            (Effect::Deny, Truth::True) => return Decision::ExplicitDeny(statement.sid.clone()),
            (Effect::Deny, Truth::Unknown(keys)) => {
                denied_maybe = true;
                unknown.extend(keys);
            }
            (Effect::Allow, Truth::True) => allowed = true,
            (Effect::Allow, Truth::Unknown(keys)) => unknown.extend(keys),
            (_, Truth::False) => {}
        }
    }
    unknown.sort();
    unknown.dedup();
    if allowed && !denied_maybe {
        Decision::Allowed
    } else if !unknown.is_empty() {
        Decision::Undecided(unknown)
    } else {
        Decision::ImplicitDeny
    }
}

/// Evaluates identity policies within a permissions boundary: both must allow.
pub fn evaluate_bounded(
    policies: &[Policy],
    boundary: Option<&Policy>,
    request: &Request,
) -> Decision {
    let identity = evaluate(policies, request);
    let Some(boundary) = boundary else {
        return identity;
    };
    match (identity, evaluate(std::slice::from_ref(boundary), request)) {
        (Decision::ExplicitDeny(sid), _) | (_, Decision::ExplicitDeny(sid)) => {
            Decision::ExplicitDeny(sid)
        }
        (Decision::Allowed, Decision::Allowed) => Decision::Allowed,
        (Decision::ImplicitDeny, _) | (_, Decision::ImplicitDeny) => Decision::ImplicitDeny,
        (Decision::Undecided(mut a), Decision::Undecided(b)) => {
            a.extend(b);
            Decision::Undecided(a)
        }
        (Decision::Undecided(keys), _) | (_, Decision::Undecided(keys)) => {
            Decision::Undecided(keys)
        }
    }
}

enum Truth {
    True,
    False,
    Unknown(Vec<String>),
}

impl Statement {
    fn applies(&self, request: &Request) -> bool {
        // IAM compares action names ignoring case.
        let action = |pattern: &String| glob_ignore_case(pattern, &request.action);
        let resource = |pattern: &String| glob(pattern, &request.resource);
        let action_matches = match &self.actions {
            Patterns::Only(patterns) => patterns.iter().any(action),
            Patterns::Not(patterns) => !patterns.iter().any(action),
        };
        let resource_matches = match &self.resources {
            Patterns::Only(patterns) => patterns.iter().any(resource),
            Patterns::Not(patterns) => !patterns.iter().any(resource),
        };
        action_matches && resource_matches
    }

    fn conditions_hold(&self, request: &Request) -> Truth {
        let mut unknown = Vec::new();
        for condition in &self.conditions {
            match condition.holds(request) {
                Truth::False => return Truth::False,
                Truth::Unknown(keys) => unknown.extend(keys),
                Truth::True => {}
            }
        }
        if unknown.is_empty() {
            Truth::True
        } else {
            Truth::Unknown(unknown)
        }
    }
}

impl Condition {
    fn holds(&self, request: &Request) -> Truth {
        let operator = self
            .operator
            .trim_start_matches("ForAnyValue:")
            .trim_start_matches("ForAllValues:");
        let (operator, if_exists) = match operator.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (operator, false),
        };
        let value = request
            .context
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(&self.key))
            .map(|(_, value)| value.as_str());
        let Some(value) = value else {
            return if if_exists {
                Truth::True
            } else {
                Truth::Unknown(vec![self.key.clone()])
            };
        };
        let any = |matches: &dyn Fn(&str) -> bool| self.values.iter().any(|v| matches(v));
        let result = match operator {
            "StringEquals" | "ArnEquals" => any(&|v| v == value),
            "StringEqualsIgnoreCase" => any(&|v| v.eq_ignore_ascii_case(value)),
            "StringLike" | "ArnLike" => any(&|v| glob(v, value)),
            "StringNotEquals" | "ArnNotEquals" => !any(&|v| v == value),
            "StringNotEqualsIgnoreCase" => !any(&|v| v.eq_ignore_ascii_case(value)),
            "StringNotLike" | "ArnNotLike" => !any(&|v| glob(v, value)),
            "Bool" => any(&|v| v.eq_ignore_ascii_case(value)),
            _ => return Truth::Unknown(vec![format!("{} ({})", self.key, self.operator)]),
        };
        if result { Truth::True } else { Truth::False }
    }
}

/// `*` matches any run of characters, `?` any one character; everything else itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    matches(pattern.as_bytes(), text.as_bytes(), false)
}

/// `glob` ignoring ASCII case, as IAM compares action names.
pub fn glob_ignore_case(pattern: &str, text: &str) -> bool {
    matches(pattern.as_bytes(), text.as_bytes(), true)
}

/// Byte-wise matching with backtracking to the last `*`. ARNs are ASCII; a `?` against a
/// multi-byte character (only the analysis's own placeholders have them) matches one byte.
fn matches(pattern: &[u8], text: &[u8], ignore_case: bool) -> bool {
    let same = |a: u8, b: u8| a == b || (ignore_case && a.eq_ignore_ascii_case(&b));
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len()
            && pattern[p] != b'*'
            && (pattern[p] == b'?' || same(pattern[p], text[t]))
        {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(effect: Effect, actions: &[&str], resources: &[&str]) -> Statement {
        Statement {
            sid: None,
            effect,
            actions: Patterns::Only(actions.iter().map(|a| a.to_string()).collect()),
            resources: Patterns::Only(resources.iter().map(|r| r.to_string()).collect()),
            conditions: Vec::new(),
        }
    }

    fn policy(statements: Vec<Statement>) -> Vec<Policy> {
        vec![Policy {
            name: "test".into(),
            statements,
        }]
    }

    #[test]
    fn wildcards_match_as_iam_matches_them() {
        assert!(glob("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b"));
        assert!(!glob("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket"));
        assert!(glob("s3:GetBucket*", "s3:GetBucketPolicy"));
        assert!(glob("key/????", "key/abcd"));
        assert!(!glob("key/????", "key/abc"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
    }

    #[test]
    fn allow_deny_and_implicit_deny() {
        let policies = policy(vec![
            statement(Effect::Allow, &["s3:*"], &["arn:aws:s3:::data/*"]),
            statement(Effect::Deny, &["s3:DeleteObject"], &["*"]),
        ]);
        let get = Request::new("S3:getobject", "arn:aws:s3:::data/x");
        assert_eq!(evaluate(&policies, &get), Decision::Allowed);
        let delete = Request::new("s3:DeleteObject", "arn:aws:s3:::data/x");
        assert_eq!(evaluate(&policies, &delete), Decision::ExplicitDeny(None));
        let elsewhere = Request::new("s3:GetObject", "arn:aws:s3:::other/x");
        assert_eq!(evaluate(&policies, &elsewhere), Decision::ImplicitDeny);
    }

    #[test]
    fn not_action_and_not_resource() {
        let mut allow_all_but = statement(Effect::Allow, &[], &["*"]);
        allow_all_but.actions = Patterns::Not(vec!["iam:*".into()]);
        let mut except_secret = statement(Effect::Allow, &["kms:Decrypt"], &[]);
        except_secret.resources = Patterns::Not(vec!["arn:aws:kms:*:*:key/secret".into()]);
        let policies = policy(vec![allow_all_but, except_secret]);
        assert_eq!(
            evaluate(&policies, &Request::new("sns:Publish", "*")),
            Decision::Allowed
        );
        assert_eq!(
            evaluate(&policies, &Request::new("iam:PassRole", "*")),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn conditions_are_evaluated_or_reported() {
        let mut pass = statement(Effect::Allow, &["iam:PassRole"], &["*"]);
        pass.conditions.push(Condition {
            operator: "StringEquals".into(),
            key: "iam:PassedToService".into(),
            values: vec!["sagemaker.amazonaws.com".into()],
        });
        let policies = policy(vec![pass]);
        let to_sagemaker = Request::new("iam:PassRole", "r")
            .with("iam:PassedToService", "sagemaker.amazonaws.com");
        assert_eq!(evaluate(&policies, &to_sagemaker), Decision::Allowed);
        let to_lambda =
            Request::new("iam:PassRole", "r").with("iam:PassedToService", "lambda.amazonaws.com");
        assert_eq!(evaluate(&policies, &to_lambda), Decision::ImplicitDeny);
        assert_eq!(
            evaluate(&policies, &Request::new("iam:PassRole", "r")),
            Decision::Undecided(vec!["iam:PassedToService".into()])
        );
    }

    #[test]
    fn a_boundary_must_allow_too() {
        let policies = policy(vec![statement(Effect::Allow, &["*"], &["*"])]);
        let boundary = Policy {
            name: "boundary".into(),
            statements: vec![statement(Effect::Allow, &["s3:*"], &["*"])],
        };
        let s3 = Request::new("s3:GetObject", "x");
        let iam = Request::new("iam:CreateRole", "x");
        assert_eq!(
            evaluate_bounded(&policies, Some(&boundary), &s3),
            Decision::Allowed
        );
        assert_eq!(
            evaluate_bounded(&policies, Some(&boundary), &iam),
            Decision::ImplicitDeny
        );
    }
}
