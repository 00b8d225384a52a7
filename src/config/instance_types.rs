//! SageMaker instance types, checked against the lists the SageMaker API itself accepts for each use.
//!
//! The lists are the SageMaker SDK's enums (`ProcessingInstanceType`, `TrainingInstanceType`,
//! `TransformInstanceType`, `ProductionVariantInstanceType`), generated from the API model, so
//! a type SageMaker would refuse in the middle of a pipeline run or an apply is refused here.
//! Updating `aws-sdk-sagemaker` brings in the types AWS adds.

use aws_sdk_sagemaker::types::{
    ProcessingInstanceType, ProductionVariantInstanceType, TrainingInstanceType,
    TransformInstanceType,
};

/// What an instance type is configured for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceUse {
    /// Data QA, preprocessing and evaluation: processing jobs.
    Processing,
    /// Tuning and training jobs.
    Training,
    /// The model's endpoints; the pipeline's batch transform over the test split runs on the
    /// same type, and the model package is registered for it for both, so it must be offered
    /// for both.
    Endpoint,
}

/// Why a configured type is refused, and what to use instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceTypeError {
    pub message: String,
    pub hint: String,
}

impl InstanceUse {
    fn describe(self) -> &'static str {
        match self {
            InstanceUse::Processing => "processing jobs",
            InstanceUse::Training => "training jobs",
            InstanceUse::Endpoint => "endpoints",
        }
    }

    /// The types SageMaker accepts for this use.
    fn offers(self, name: &str) -> bool {
        match self {
            InstanceUse::Processing => ProcessingInstanceType::values().contains(&name),
            InstanceUse::Training => TrainingInstanceType::values().contains(&name),
            InstanceUse::Endpoint => {
                ProductionVariantInstanceType::values().contains(&name)
                    && TransformInstanceType::values().contains(&name)
            }
        }
    }

    /// The API's list for this use (for endpoints, the endpoint list alone).
    fn list(self) -> &'static [&'static str] {
        match self {
            InstanceUse::Processing => ProcessingInstanceType::values(),
            InstanceUse::Training => TrainingInstanceType::values(),
            InstanceUse::Endpoint => ProductionVariantInstanceType::values(),
        }
    }

    fn candidates(self) -> impl Iterator<Item = &'static str> {
        self.list()
            .iter()
            .copied()
            .filter(move |name| self.offers(name))
    }
}

const ALL_USES: [InstanceUse; 3] = [
    InstanceUse::Processing,
    InstanceUse::Training,
    InstanceUse::Endpoint,
];

/// Checks `name` for `instance_use`; the error names the use and suggests a type.
pub fn check_instance_type(name: &str, instance_use: InstanceUse) -> Result<(), InstanceTypeError> {
    if instance_use.offers(name) {
        return Ok(());
    }
    let purpose = instance_use.describe();
    let refuse = |message: String, hint: String| Err(InstanceTypeError { message, hint });
    let prefixed = format!("ml.{name}");
    if !name.starts_with("ml.") && instance_use.offers(&prefixed) {
        return refuse(
            format!("`{name}` is not a SageMaker instance type for {purpose}"),
            format!("did you mean `{prefixed}`? SageMaker's types start with `ml.`"),
        );
    }
    if instance_use == InstanceUse::Endpoint && instance_use.list().contains(&name) {
        return refuse(
            format!("`{name}` is offered for endpoints but not for batch transform"),
            "the pipeline's batch transform over the test split runs on the endpoint type; pick one offered for both, e.g. `ml.m5.large`".into(),
        );
    }
    if let Some(other) = ALL_USES
        .into_iter()
        .find(|other| *other != instance_use && other.list().contains(&name))
    {
        return refuse(
            format!(
                "`{name}` is a SageMaker instance type for {}, not for {purpose}",
                other.describe()
            ),
            suggestion(name, instance_use),
        );
    }
    refuse(
        format!("`{name}` is not a SageMaker instance type for {purpose}"),
        suggestion(name, instance_use),
    )
}

/// A close size of the same family, else the family's sizes, else a close family in the same
/// size, else an example. Names are compared part by part: whole names share `ml.` and
/// `xlarge` with every type, so they look alike to a string metric.
fn suggestion(name: &str, instance_use: InstanceUse) -> String {
    let purpose = instance_use.describe();
    if let Some((family, size)) = split(name) {
        let sizes: Vec<&str> = instance_use
            .candidates()
            .filter_map(split)
            .filter(|(candidate, _)| *candidate == family)
            .map(|(_, size)| size)
            .collect();
        if !sizes.is_empty() {
            return match crate::error::did_you_mean(size, sizes.iter().copied()) {
                Some(close) => format!("did you mean `ml.{family}.{close}`?"),
                None => format!(
                    "SageMaker offers `ml.{family}` for {purpose} in sizes {}",
                    sizes.join(", ")
                ),
            };
        }
        let mut families: Vec<&str> = instance_use
            .candidates()
            .filter_map(split)
            .map(|(family, _)| family)
            .collect();
        families.dedup();
        if let Some(close) = crate::error::did_you_mean(family, families.iter().copied()) {
            let same_size = format!("ml.{close}.{size}");
            if instance_use.offers(&same_size) {
                return format!("did you mean `{same_size}`?");
            }
            return format!("did you mean the `ml.{close}` family?");
        }
        let series = series(family);
        let kin: Vec<&str> = families
            .iter()
            .copied()
            .filter(|candidate| !series.is_empty() && self::series(candidate) == series)
            .collect();
        if !kin.is_empty() {
            return format!(
                "SageMaker's `ml.{series}` families for {purpose} are {}",
                kin.join(", ")
            );
        }
    }
    let example = match instance_use {
        InstanceUse::Processing => "ml.m5.xlarge",
        InstanceUse::Training => "ml.g5.xlarge",
        InstanceUse::Endpoint => "ml.m5.large",
    };
    format!("use a type SageMaker offers for {purpose}, e.g. `{example}`")
}

/// The letters naming a family's series: `p` for `p4d`, `trn` for `trn1n`.
fn series(family: &str) -> &str {
    family
        .trim_end_matches(|c: char| c.is_ascii_alphabetic())
        .trim_end_matches(|c: char| !c.is_ascii_alphabetic())
}

/// `("g5", "xlarge")` for `ml.g5.xlarge`.
fn split(name: &str) -> Option<(&str, &str)> {
    let mut parts = name.strip_prefix("ml.")?.split('.');
    let family = parts.next()?;
    let size = parts.next()?;
    parts.next().is_none().then_some((family, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_shipped_types_for_their_uses() {
        for (name, instance_use) in [
            ("ml.m5.xlarge", InstanceUse::Processing),
            ("ml.g5.xlarge", InstanceUse::Training),
            ("ml.g5.2xlarge", InstanceUse::Training),
            ("ml.m5.large", InstanceUse::Endpoint),
            ("ml.c5.xlarge", InstanceUse::Endpoint),
        ] {
            assert_eq!(check_instance_type(name, instance_use), Ok(()), "{name}");
        }
    }

    #[test]
    fn refuses_a_type_sagemaker_does_not_have() {
        let error =
            check_instance_type("ml.notreal.xlarge", InstanceUse::Training).expect_err("refused");
        assert_eq!(
            error.message,
            "`ml.notreal.xlarge` is not a SageMaker instance type for training jobs"
        );
        assert_eq!(
            error.hint,
            "use a type SageMaker offers for training jobs, e.g. `ml.g5.xlarge`"
        );
    }

    #[test]
    fn suggests_the_ml_prefix_and_close_names() {
        let error = check_instance_type("p3.2xlarge", InstanceUse::Training).expect_err("refused");
        assert_eq!(
            error.hint,
            "did you mean `ml.p3.2xlarge`? SageMaker's types start with `ml.`"
        );
        let error =
            check_instance_type("ml.g5.xlareg", InstanceUse::Training).expect_err("refused");
        assert_eq!(error.hint, "did you mean `ml.g5.xlarge`?");
        let error =
            check_instance_type("ml.m5x.xlarge", InstanceUse::Training).expect_err("refused");
        assert_eq!(error.hint, "did you mean `ml.m5.xlarge`?");
        let error =
            check_instance_type("ml.p9.2xlarge", InstanceUse::Training).expect_err("refused");
        assert!(
            error
                .hint
                .starts_with("SageMaker's `ml.p` families for training jobs are ")
                && error.hint.contains("p3"),
            "{}",
            error.hint
        );
        let error = check_instance_type("ml.g5.huge", InstanceUse::Training).expect_err("refused");
        assert!(
            error
                .hint
                .starts_with("SageMaker offers `ml.g5` for training jobs in sizes ")
                && error.hint.contains("2xlarge"),
            "{}",
            error.hint
        );
    }

    #[test]
    fn refuses_a_type_offered_only_for_another_use() {
        // Inferentia serves endpoints; SageMaker trains on neither inf1 nor inf2.
        let error =
            check_instance_type("ml.inf1.xlarge", InstanceUse::Training).expect_err("refused");
        assert_eq!(
            error.message,
            "`ml.inf1.xlarge` is a SageMaker instance type for endpoints, not for training jobs"
        );
    }

    #[test]
    fn an_endpoint_type_must_also_run_batch_transform() {
        let endpoint_only = ProductionVariantInstanceType::values()
            .iter()
            .find(|name| !TransformInstanceType::values().contains(name))
            .expect("SageMaker has endpoint types that batch transform lacks");
        let error = check_instance_type(endpoint_only, InstanceUse::Endpoint).expect_err("refused");
        assert!(
            error.message.contains("not for batch transform"),
            "{}",
            error.message
        );
    }
}
