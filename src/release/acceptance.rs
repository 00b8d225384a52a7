//! Acceptance tests of an endpoint: it is InService, and every sample payload in the
//! project's payload folder gets an answer shaped like the image-classification algorithm's
//! (a JSON array of one probability per class) within the configured latency.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::aws::platform::Platform;
use crate::config::{Acceptance, Model};
use crate::error::Error;

/// A sample request body and its content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub name: String,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// The content type of a sample, by extension; `None` for files that are not samples.
fn content_type(path: &Path) -> Option<&'static str> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    match extension.as_str() {
        "jpg" | "jpeg" => Some("image/jpeg"),
        "png" => Some("image/png"),
        _ => None,
    }
}

/// The samples of `acceptance.payloads`, sorted by name; an error when there are none.
pub fn load_payloads(project_dir: &Path, acceptance: &Acceptance) -> Result<Vec<Payload>, Error> {
    let folder = project_dir.join(&acceptance.payloads);
    let hint = Some(format!(
        "put sample images (.jpg, .jpeg, .png) in {} or point `acceptance.payloads` elsewhere",
        acceptance.payloads
    ));
    let entries = std::fs::read_dir(&folder).map_err(|source| Error::Usage {
        message: format!(
            "cannot read the sample payloads in {}: {source}",
            folder.display()
        ),
        hint: hint.clone(),
    })?;
    let mut payloads = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| Error::io("read", &folder, source))?
            .path();
        let Some(content_type) = content_type(&path) else {
            continue;
        };
        let body = std::fs::read(&path).map_err(|source| Error::io("read", &path, source))?;
        payloads.push(Payload {
            name: path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
            content_type,
            body,
        });
    }
    if payloads.is_empty() {
        return Err(Error::Usage {
            message: format!("{} holds no sample payloads", folder.display()),
            hint,
        });
    }
    payloads.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(payloads)
}

/// Whether a response is a probability per class: a JSON array of `classes` numbers in
/// [0, 1] summing to 1 (within 1e-3).
pub fn check_response(body: &[u8], classes: u32) -> Result<(), String> {
    let text = String::from_utf8_lossy(body);
    let shown: String = text.chars().take(80).collect();
    let values: Vec<f64> = serde_json::from_slice::<Vec<f64>>(body)
        .map_err(|_| format!("the answer is not a JSON array of probabilities: `{shown}`"))?;
    if values.len() != classes as usize {
        return Err(format!(
            "the answer has {} probabilities; the model has {classes} classes",
            values.len()
        ));
    }
    if values.iter().any(|value| !(0.0..=1.0).contains(value)) {
        return Err("the answer has a probability outside [0, 1]".into());
    }
    let sum: f64 = values.iter().sum();
    if (sum - 1.0).abs() > 1e-3 {
        return Err(format!("the probabilities sum to {sum:.4}, not 1"));
    }
    Ok(())
}

/// One sample's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sample {
    pub payload: String,
    pub milliseconds: u64,
    pub error: Option<String>,
}

/// One endpoint's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointResult {
    pub model: String,
    pub endpoint: String,
    /// Why the endpoint could not be tested at all (not InService).
    pub unavailable: Option<String>,
    pub samples: Vec<Sample>,
}

impl EndpointResult {
    pub fn passed(&self) -> bool {
        self.unavailable.is_none()
            && !self.samples.is_empty()
            && self.samples.iter().all(|sample| sample.error.is_none())
    }

    pub fn slowest_milliseconds(&self) -> u64 {
        self.samples
            .iter()
            .map(|sample| sample.milliseconds)
            .max()
            .unwrap_or_default()
    }

    /// Every problem, one line each.
    pub fn failures(&self) -> Vec<String> {
        self.unavailable
            .iter()
            .cloned()
            .chain(self.samples.iter().filter_map(|sample| {
                sample
                    .error
                    .as_ref()
                    .map(|error| format!("{}: {error}", sample.payload))
            }))
            .collect()
    }
}

/// Tests `model`'s endpoint with every payload, one request at a time.
pub async fn test_endpoint<P: Platform>(
    platform: &P,
    model: &Model,
    payloads: &[Payload],
    max_latency_milliseconds: u32,
) -> EndpointResult {
    let mut result = EndpointResult {
        model: model.name.clone(),
        endpoint: model.endpoint_name.clone(),
        unavailable: None,
        samples: Vec::new(),
    };
    match platform.endpoint(&model.endpoint_name).await {
        Ok(Some(state)) if state.status == "InService" => {}
        Ok(Some(state)) => {
            result.unavailable = Some(format!(
                "endpoint {} is {}{}",
                model.endpoint_name,
                state.status,
                state
                    .failure_reason
                    .map(|reason| format!(": {reason}"))
                    .unwrap_or_default()
            ));
            return result;
        }
        Ok(None) => {
            result.unavailable = Some(format!("endpoint {} does not exist", model.endpoint_name));
            return result;
        }
        Err(error) => {
            result.unavailable = Some(format!(
                "cannot describe endpoint {}: {error}",
                model.endpoint_name
            ));
            return result;
        }
    }
    for payload in payloads {
        let started = Instant::now();
        let answer = platform
            .invoke_endpoint(&model.endpoint_name, payload.content_type, &payload.body)
            .await;
        let milliseconds = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let error = match answer {
            Err(error) => Some(format!("the request failed: {error}")),
            Ok(body) => match check_response(&body, model.num_classes) {
                Err(problem) => Some(problem),
                Ok(()) if milliseconds > u64::from(max_latency_milliseconds) => Some(format!(
                    "answered in {milliseconds} ms, above the {max_latency_milliseconds} ms limit"
                )),
                Ok(()) => None,
            },
        };
        result.samples.push(Sample {
            payload: payload.name.clone(),
            milliseconds,
            error,
        });
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_must_be_one_probability_per_class() {
        assert_eq!(check_response(b"[0.25, 0.75]", 2), Ok(()));
        assert!(
            check_response(b"[0.5, 0.5]", 3)
                .unwrap_err()
                .contains("3 classes")
        );
        assert!(
            check_response(b"[1.5, -0.5]", 2)
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            check_response(b"[0.2, 0.2]", 2)
                .unwrap_err()
                .contains("sum to 0.4000")
        );
        assert!(check_response(b"body", 2).unwrap_err().contains("`body`"));
    }

    #[test]
    fn payloads_are_the_folder_images_in_name_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let folder = dir.path().join("payloads");
        std::fs::create_dir_all(&folder).expect("mkdir");
        std::fs::write(folder.join("b.PNG"), b"png").expect("write");
        std::fs::write(folder.join("a.jpg"), b"jpg").expect("write");
        std::fs::write(folder.join("README.md"), b"not a sample").expect("write");
        let acceptance = Acceptance {
            payloads: "payloads".into(),
            max_latency_milliseconds: 100,
        };
        let payloads = load_payloads(dir.path(), &acceptance).expect("payloads");
        let names: Vec<(&str, &str)> = payloads
            .iter()
            .map(|payload| (payload.name.as_str(), payload.content_type))
            .collect();
        assert_eq!(names, [("a.jpg", "image/jpeg"), ("b.PNG", "image/png")]);

        std::fs::remove_file(folder.join("a.jpg")).expect("rm");
        std::fs::remove_file(folder.join("b.PNG")).expect("rm");
        let error = load_payloads(dir.path(), &acceptance).expect_err("empty");
        assert!(
            error.to_string().contains("holds no sample payloads"),
            "{error}"
        );
    }
}
