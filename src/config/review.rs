//! The `review` section: how long photos the router was unsure of wait for a person, how long
//! a reviewer's claim on one lasts, and when the labels people give start the next training
//! run (the debounced new-data trigger).

use serde::Serialize;

use super::environment::Problem;
use super::raw::RawReview;

/// Where review items live in the data bucket: `<PREFIX>pending/<parent>/`, `claims/…`,
/// `done/…`. Fixed, so the router, the lifecycle rule, the roles and `review` agree.
pub const PREFIX: &str = "review/";
/// Where the retrain function keeps each model's count of new images.
pub const RETRAIN_STATE_PREFIX: &str = "retrain/state/";

#[derive(Debug, Clone, Serialize)]
pub struct Review {
    /// Unreviewed photos (and their records) expire after this many days.
    pub expire_days: u32,
    /// A reviewer's claim on a photo lapses after this many minutes unanswered.
    pub claim_minutes: u32,
    /// A model's pipeline starts once this many new images have arrived since its last run…
    pub retrain_batch_size: u32,
    /// …or once at least one has and none has arrived for this many minutes.
    pub retrain_quiet_minutes: u32,
}

impl Review {
    pub fn pending_prefix(&self, parent: &str) -> String {
        format!("{PREFIX}pending/{parent}/")
    }
}

pub(super) fn validate_review(raw: RawReview, problems: &mut Vec<Problem>) -> Review {
    let review = Review {
        expire_days: raw.expire_days.unwrap_or(30),
        claim_minutes: raw.claim_minutes.unwrap_or(15),
        retrain_batch_size: raw.retrain_batch_size.unwrap_or(200),
        retrain_quiet_minutes: raw.retrain_quiet_minutes.unwrap_or(60),
    };
    let mut within = |key: &str, value: u32, (min, max): (u32, u32), unit: &str, hint: &str| {
        if !(min..=max).contains(&value) {
            problems.push(
                Problem::new(
                    format!("review.{key}"),
                    format!("{value} is outside {min} to {max} {unit}"),
                )
                .hint(hint),
            );
        }
    };
    within(
        "expire_days",
        review.expire_days,
        (1, 365),
        "days",
        "the number of days an unreviewed photo is kept, such as 30",
    );
    within(
        "claim_minutes",
        review.claim_minutes,
        (1, 240),
        "minutes",
        "how long a reviewer may hold a photo before another may take it, such as 15",
    );
    within(
        "retrain_batch_size",
        review.retrain_batch_size,
        (1, 100_000),
        "images",
        "the number of new images that starts a run, such as 200",
    );
    // The retrain function checks the quiet period on a one-minute schedule.
    within(
        "retrain_quiet_minutes",
        review.retrain_quiet_minutes,
        (1, 10_080),
        "minutes",
        "minutes without new images before a run starts, such as 60 (at most a week)",
    );
    review
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_each_limit_is_named() {
        let mut problems = Vec::new();
        let review = validate_review(RawReview::default(), &mut problems);
        assert!(problems.is_empty());
        assert_eq!((review.expire_days, review.retrain_batch_size), (30, 200));
        assert_eq!(review.pending_prefix("plants"), "review/pending/plants/");
        let raw = RawReview {
            expire_days: Some(0),
            claim_minutes: Some(241),
            retrain_batch_size: Some(0),
            retrain_quiet_minutes: Some(20_000),
        };
        validate_review(raw, &mut problems);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "review.expire_days",
                "review.claim_minutes",
                "review.retrain_batch_size",
                "review.retrain_quiet_minutes"
            ]
        );
    }
}
