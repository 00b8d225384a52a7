//! Stack events and the deterministic clock that stamps them and mints ids.

use crate::aws::StackEvent;

use super::stacks::Stack;

pub(super) const STACK_TYPE: &str = "AWS::CloudFormation::Stack";
/// 2024-01-01T00:00:00Z: the fake clock starts here and advances a second per event.
const EPOCH: u64 = 1_704_067_200;

/// Stack-level statuses that begin an operation (rollbacks and cleanups continue one).
pub(super) const OPERATION_STARTS: [&str; 5] = [
    "CREATE_IN_PROGRESS",
    "UPDATE_IN_PROGRESS",
    "DELETE_IN_PROGRESS",
    "IMPORT_IN_PROGRESS",
    "REVIEW_IN_PROGRESS",
];

impl Stack {
    pub(super) fn record(
        &mut self,
        clock: &mut Clock,
        logical_id: &str,
        resource_type: &str,
        status: &str,
        reason: Option<&str>,
    ) {
        let id = uuid(clock.unique());
        self.events.push(StackEvent {
            id,
            timestamp: clock.now(),
            logical_id: logical_id.to_string(),
            resource_type: resource_type.to_string(),
            status: status.to_string(),
            reason: reason.map(str::to_string),
        });
    }

    /// A stack-level event, which also sets the stack's status.
    pub(super) fn record_stack(&mut self, clock: &mut Clock, status: &str, reason: Option<&str>) {
        let name = self.name.clone();
        self.record(clock, &name, STACK_TYPE, status, reason);
        self.status = status.to_string();
        self.status_reason = reason.map(str::to_string);
    }
}

/// A deterministic clock and id source: every reading advances it.
#[derive(Debug, Default)]
pub(super) struct Clock {
    sequence: u64,
}

impl Clock {
    pub(super) fn next(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    /// RFC 3339, a second after the previous reading.
    pub(super) fn now(&mut self) -> String {
        rfc3339(EPOCH + self.next())
    }

    /// 64 bits that look random (splitmix64 of the sequence).
    pub(super) fn unique(&mut self) -> u64 {
        let mut value = self.next().wrapping_add(0x9e37_79b9_7f4a_7c15);
        value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        value ^ (value >> 31)
    }
}

pub(super) fn uuid(bits: u64) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        bits >> 32,
        (bits >> 16) & 0xffff,
        bits & 0xfff,
        (bits >> 20) & 0xfff,
        bits & 0xffff_ffff_ffff
    )
}

fn rfc3339(seconds: u64) -> String {
    let days = seconds / 86_400;
    let time = seconds % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        time / 3_600,
        time % 3_600 / 60,
        time % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_writes_rfc3339() {
        assert_eq!(rfc3339(EPOCH), "2024-01-01T00:00:00Z");
        assert_eq!(rfc3339(EPOCH + 60 * 86_400 + 3_661), "2024-03-01T01:01:01Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
