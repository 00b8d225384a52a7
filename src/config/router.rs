//! The `router` section: how the function behind `POST /identify` answers and is sized, with
//! the limits AWS sets on each value checked here rather than at deploy time.

use serde::Serialize;

use super::environment::Problem;
use super::raw::RawRouter;

/// `timeout_seconds` bounds each endpoint call; a request makes two (parent, then child), so
/// the function may run `2 × timeout + 4` seconds, which must stay under API Gateway's
/// 29-second integration timeout for a REST API, or the caller gets API Gateway's 504 rather
/// than the router's. <https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html>
pub const MAX_TIMEOUT_SECONDS: u32 = 12;
/// Lambda memory: 128 MB to 10,240 MB.
/// <https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html>
pub const MEMORY_MB: (u32, u32) = (128, 10_240);
/// A synchronous Lambda invocation's request is at most 6 MB, and API Gateway hands a binary
/// body over base64-encoded (4 bytes per 3): images up to 4 MB leave room for the event's other
/// fields. <https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>
pub const MAX_IMAGE_BYTES: u32 = 4_000_000;

#[derive(Debug, Clone, Serialize)]
pub struct Router {
    pub low_confidence_threshold: f64,
    pub throttle_rate_limit: f64,
    pub throttle_burst_limit: u32,
    pub timeout_seconds: u32,
    pub memory_mb: u32,
    pub max_image_bytes: u32,
}

pub(super) fn validate_router(raw: RawRouter, problems: &mut Vec<Problem>) -> Router {
    let router = Router {
        low_confidence_threshold: raw.low_confidence_threshold.unwrap_or(0.6),
        throttle_rate_limit: raw.throttle_rate_limit.unwrap_or(20.0),
        throttle_burst_limit: raw.throttle_burst_limit.unwrap_or(40),
        timeout_seconds: raw.timeout_seconds.unwrap_or(10),
        // Lambda's CPU grows with memory: 256 MB decodes a 4 MB photo's base64 in time.
        memory_mb: raw.memory_mb.unwrap_or(256),
        max_image_bytes: raw.max_image_bytes.unwrap_or(MAX_IMAGE_BYTES),
    };
    if !(router.low_confidence_threshold > 0.0 && router.low_confidence_threshold < 1.0) {
        problems.push(
            Problem::new(
                "router.low_confidence_threshold",
                format!(
                    "{} is not a confidence strictly between 0 and 1",
                    router.low_confidence_threshold
                ),
            )
            .hint("a share such as 0.6: answers less sure than that are flagged for review"),
        );
    }
    if router.throttle_rate_limit <= 0.0 {
        problems.push(Problem::new(
            "router.throttle_rate_limit",
            "must be above 0 requests per second",
        ));
    }
    if !(1..=MAX_TIMEOUT_SECONDS).contains(&router.timeout_seconds) {
        problems.push(
            Problem::new(
                "router.timeout_seconds",
                format!(
                    "{} s is outside 1 to {MAX_TIMEOUT_SECONDS} s",
                    router.timeout_seconds
                ),
            )
            .hint("each request calls two endpoints, and API Gateway gives up on a REST integration after 29 s"),
        );
    }
    let (min, max) = MEMORY_MB;
    if !(min..=max).contains(&router.memory_mb) {
        problems.push(
            Problem::new(
                "router.memory_mb",
                format!(
                    "{} MB is outside Lambda's {min} to {max} MB",
                    router.memory_mb
                ),
            )
            .hint("256 is plenty for the router: it only forwards the image"),
        );
    }
    if router.max_image_bytes == 0 || router.max_image_bytes > MAX_IMAGE_BYTES {
        problems.push(
            Problem::new(
                "router.max_image_bytes",
                format!(
                    "{} is outside 1 to {MAX_IMAGE_BYTES} bytes",
                    router.max_image_bytes
                ),
            )
            .hint("a Lambda request is at most 6 MB and the image arrives base64-encoded"),
        );
    }
    router
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_limits_are_aws_limits() {
        let mut problems = Vec::new();
        let router = validate_router(RawRouter::default(), &mut problems);
        assert!(problems.is_empty());
        assert_eq!(router.timeout_seconds, 10);
        let raw = RawRouter {
            low_confidence_threshold: Some(1.0),
            timeout_seconds: Some(13),
            memory_mb: Some(64),
            max_image_bytes: Some(6_000_000),
            throttle_rate_limit: Some(0.0),
            ..RawRouter::default()
        };
        validate_router(raw, &mut problems);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "router.low_confidence_threshold",
                "router.throttle_rate_limit",
                "router.timeout_seconds",
                "router.memory_mb",
                "router.max_image_bytes"
            ]
        );
    }
}
