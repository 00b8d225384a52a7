//! AWS naming rules that would otherwise fail late, in the middle of an apply.

/// Why `name` is not a valid S3 bucket name, if it is not.
///
/// Rules for general purpose buckets: 3-63 characters of lowercase letters, digits, dots and
/// hyphens; starting and ending with a letter or digit; no `..`; not an IP address; none of the
/// reserved prefixes and suffixes.
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    if !(3..=63).contains(&name.len()) {
        return Err(format!(
            "is {} characters long; S3 allows 3 to 63",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        return Err(format!(
            "contains `{bad}`; S3 allows lowercase letters, digits, dots and hyphens"
        ));
    }
    let first_and_last = [name.chars().next(), name.chars().last()];
    if first_and_last
        .iter()
        .flatten()
        .any(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
    {
        return Err("must start and end with a lowercase letter or digit".into());
    }
    if name.contains("..") {
        return Err("must not contain two adjacent dots".into());
    }
    if name.split('.').count() == 4 && name.split('.').all(|part| part.parse::<u8>().is_ok()) {
        return Err("must not look like an IP address".into());
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(prefix) {
            return Err(format!(
                "must not start with the reserved prefix `{prefix}`"
            ));
        }
    }
    for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if name.ends_with(suffix) {
            return Err(format!("must not end with the reserved suffix `{suffix}`"));
        }
    }
    Ok(())
}

/// SageMaker resource names (pipelines, model package groups, endpoints): at most 63
/// characters of letters, digits and hyphens, not starting or ending with a hyphen.
pub fn check_sagemaker_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 {
        return Err(format!(
            "is {} characters long; SageMaker allows 1 to 63",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(format!(
            "contains `{bad}`; SageMaker allows letters, digits and hyphens"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("must not start or end with a hyphen".into());
    }
    Ok(())
}

/// The tool's own identifiers (project, environment and model names): they become parts of
/// stack, bucket and SageMaker names, so they are kept to lowercase letters, digits and hyphens.
pub fn check_identifier(name: &str, max: usize) -> Result<(), String> {
    if name.is_empty() || name.len() > max {
        return Err(format!(
            "is {} characters long; it must be 1 to {max}",
            name.len()
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("must start with a lowercase letter".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "contains `{bad}`; use lowercase letters, digits and hyphens"
        ));
    }
    if name.ends_with('-') || name.contains("--") {
        return Err("must not end with a hyphen or contain two in a row".into());
    }
    Ok(())
}

pub fn check_account_id(id: &str) -> Result<(), String> {
    if id.len() == 12 && id.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err("must be exactly 12 digits".into())
    }
}

/// Region codes such as `eu-west-1`, `us-gov-west-1`, `ap-southeast-3`.
pub fn check_region(region: &str) -> Result<(), String> {
    let parts: Vec<&str> = region.split('-').collect();
    let valid = parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1].iter().all(is_lower_alpha)
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty();
    if valid {
        Ok(())
    } else {
        Err("is not an AWS region code such as `eu-west-1`".into())
    }
}

fn is_lower_alpha(part: &&str) -> bool {
    !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        assert!(check_bucket_name("mlops-staging-data-123456789012").is_ok());
        assert!(check_bucket_name("ab").is_err());
        assert!(check_bucket_name("Data_Bucket").is_err());
        assert!(check_bucket_name("-data").is_err());
        assert!(check_bucket_name("a..b").is_err());
        assert!(check_bucket_name("192.168.1.1").is_err());
        assert!(check_bucket_name("xn--bucket").is_err());
        assert!(check_bucket_name("bucket-s3alias").is_err());
        assert!(check_bucket_name(&"a".repeat(64)).is_err());
    }

    #[test]
    fn sagemaker_names_are_at_most_63_alphanumerics_and_hyphens() {
        assert!(check_sagemaker_name("mlops-prod-plants").is_ok());
        assert!(check_sagemaker_name(&"a".repeat(64)).is_err());
        assert!(check_sagemaker_name("under_score").is_err());
        assert!(check_sagemaker_name("-leading").is_err());
    }

    #[test]
    fn identifiers_regions_and_accounts() {
        assert!(check_identifier("mlops-images", 24).is_ok());
        assert!(check_identifier("Prod", 24).is_err());
        assert!(check_identifier("a--b", 24).is_err());
        assert!(check_region("eu-west-1").is_ok());
        assert!(check_region("us-gov-west-1").is_ok());
        assert!(check_region("europe").is_err());
        assert!(check_account_id("123456789012").is_ok());
        assert!(check_account_id("12345").is_err());
    }
}
