//! Default container images per region: the scikit-learn processing image and the built-in
//! image-classification algorithm, whose registries are AWS-owned accounts that differ by region.

/// The processing image the generator defaults to.
pub const SKLEARN_PROCESSING: &str = "sagemaker-scikit-learn:1.2-1-cpu-py3";
/// The built-in image-classification algorithm, for training and inference.
pub const IMAGE_CLASSIFICATION: &str = "image-classification:1";

/// Registry accounts of `sagemaker-scikit-learn` 1.2-1, from the SageMaker Python SDK's
/// `image_uri_config/sklearn.json`.
const SKLEARN_ACCOUNTS: [(&str, &str); 12] = [
    ("ap-northeast-1", "354813040037"),
    ("ap-southeast-1", "121021644041"),
    ("ap-southeast-2", "783357654285"),
    ("ca-central-1", "341280168497"),
    ("eu-central-1", "492215442770"),
    ("eu-north-1", "662702820516"),
    ("eu-west-1", "141502667606"),
    ("eu-west-2", "764974769150"),
    ("us-east-1", "683313688378"),
    ("us-east-2", "257758044811"),
    ("us-west-1", "746614075791"),
    ("us-west-2", "246618743249"),
];

/// Registry accounts of `image-classification` 1, from the SDK's
/// `image_uri_config/image-classification.json`.
const IMAGE_CLASSIFICATION_ACCOUNTS: [(&str, &str); 12] = [
    ("ap-northeast-1", "501404015308"),
    ("ap-southeast-1", "475088953585"),
    ("ap-southeast-2", "544295431143"),
    ("ca-central-1", "469771592824"),
    ("eu-central-1", "813361260812"),
    ("eu-north-1", "669576153137"),
    ("eu-west-1", "685385470294"),
    ("eu-west-2", "644912444149"),
    ("us-east-1", "811284229777"),
    ("us-east-2", "825641698319"),
    ("us-west-1", "632365934929"),
    ("us-west-2", "433757028032"),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no default `{image}` image for region `{region}`")]
pub struct UnknownRegion {
    pub region: String,
    pub image: &'static str,
}

impl UnknownRegion {
    /// A near-miss region name if there is one, else the regions that have a default.
    pub fn hint(&self) -> String {
        let known = SKLEARN_ACCOUNTS.map(|(region, _)| region);
        let closest = known
            .iter()
            .map(|region| (strsim::levenshtein(region, &self.region), *region))
            .min()
            .filter(|(distance, _)| *distance <= 2);
        match closest {
            Some((_, region)) => format!("did you mean `{region}`?"),
            None => format!(
                "defaults exist for {}; set the image URI explicitly for other regions",
                known.join(", ")
            ),
        }
    }
}

/// `<account>.dkr.ecr.<region>.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3`.
pub fn sklearn_processing_image(region: &str) -> Result<String, UnknownRegion> {
    image_uri(&SKLEARN_ACCOUNTS, SKLEARN_PROCESSING, region)
}

/// `<account>.dkr.ecr.<region>.amazonaws.com/image-classification:1`.
pub fn image_classification_image(region: &str) -> Result<String, UnknownRegion> {
    image_uri(&IMAGE_CLASSIFICATION_ACCOUNTS, IMAGE_CLASSIFICATION, region)
}

fn image_uri(
    accounts: &[(&str, &str)],
    image: &'static str,
    region: &str,
) -> Result<String, UnknownRegion> {
    accounts
        .iter()
        .find(|(known, _)| *known == region)
        // Every region in the tables is in the `aws` partition, hence `amazonaws.com`.
        .map(|(_, account)| format!("{account}.dkr.ecr.{region}.amazonaws.com/{image}"))
        .ok_or_else(|| UnknownRegion {
            region: region.to_string(),
            image,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_regions_get_their_registry_accounts() {
        assert_eq!(
            sklearn_processing_image("us-east-1").expect("known"),
            "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
        );
        assert_eq!(
            image_classification_image("eu-west-1").expect("known"),
            "685385470294.dkr.ecr.eu-west-1.amazonaws.com/image-classification:1"
        );
        for region in [
            "us-east-1",
            "us-east-2",
            "us-west-2",
            "eu-west-1",
            "eu-central-1",
            "ap-southeast-2",
        ] {
            assert!(sklearn_processing_image(region).is_ok(), "{region}");
            assert!(image_classification_image(region).is_ok(), "{region}");
        }
    }

    #[test]
    fn both_tables_cover_the_same_regions() {
        assert_eq!(
            SKLEARN_ACCOUNTS.map(|(region, _)| region),
            IMAGE_CLASSIFICATION_ACCOUNTS.map(|(region, _)| region)
        );
    }

    #[test]
    fn an_unknown_region_is_an_error_with_a_hint() {
        let error = image_classification_image("eu-west-9").expect_err("unknown");
        assert_eq!(
            error.to_string(),
            "no default `image-classification:1` image for region `eu-west-9`"
        );
        assert_eq!(error.hint(), "did you mean `eu-west-1`?");
        let error = sklearn_processing_image("mars-north-1").expect_err("unknown");
        assert!(
            error.hint().starts_with("defaults exist for"),
            "{}",
            error.hint()
        );
    }
}
