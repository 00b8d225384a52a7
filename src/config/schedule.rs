//! EventBridge schedule expressions (`rate(...)`, `cron(...)`), checked against EventBridge's grammar.
//!
//! The rules are those of the EventBridge user guide, "Schedule expressions for rules"
//! (<https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html>)
//! and its rate reference (`eb-rate-expressions.html`):
//!
//! - `rate(value unit)`: a positive whole `value`; `unit` one of minute, minutes, hour, hours,
//!   day, days, singular exactly when the value is 1 (`rate(1 hours)` and `rate(5 hour)` are
//!   refused). The shortest rate is one minute.
//! - `cron(Minutes Hours Day-of-month Month Day-of-week Year)`: six fields separated by white
//!   space, each taking the values and wildcards of [`FIELDS`]. One of day-of-month and
//!   day-of-week must be `?` and the other not: a value or `*` in one needs `?` in the other.
//!   With `#`, day-of-week holds that one expression only (`3#1,6#3` is refused).
//!
//! CloudFormation passes the expression to EventBridge as is, and EventBridge answers anything
//! else with "Parameter ScheduleExpression is not valid." in the middle of an apply.

/// Why an expression is refused: what is wrong, and the fix (a corrected expression where
/// one can be derived).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError {
    pub message: String,
    pub hint: String,
}

impl ScheduleError {
    fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        ScheduleError {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

/// Checks one schedule expression; `Ok` when EventBridge would accept it.
pub fn check_schedule(expression: &str) -> Result<(), ScheduleError> {
    if let Some(inner) = inside(expression, "rate") {
        check_rate(expression, inner)
    } else if let Some(inner) = inside(expression, "cron") {
        check_cron(expression, inner)
    } else {
        Err(ScheduleError::new(
            format!("`{expression}` is not a schedule expression"),
            "use `rate(7 days)` or `cron(0 3 ? * MON *)`, or remove the key to turn the schedule off",
        ))
    }
}

/// The text between `name(` and the closing `)`.
fn inside<'a>(expression: &'a str, name: &str) -> Option<&'a str> {
    expression
        .strip_prefix(name)?
        .strip_prefix('(')?
        .strip_suffix(')')
}

const UNITS: [(&str, &str); 3] = [("minute", "minutes"), ("hour", "hours"), ("day", "days")];

fn check_rate(expression: &str, inner: &str) -> Result<(), ScheduleError> {
    let parts: Vec<&str> = inner.split_whitespace().collect();
    let [value, unit] = parts[..] else {
        return Err(ScheduleError::new(
            format!("`{expression}` is not a rate: it needs a value and a unit"),
            "write `rate(<value> <unit>)`, e.g. `rate(7 days)`, `rate(1 hour)` or `rate(30 minutes)`",
        ));
    };
    let Some(value) = value
        .parse::<u64>()
        .ok()
        .filter(|_| value.chars().all(|c| c.is_ascii_digit()))
    else {
        return Err(ScheduleError::new(
            format!("`{expression}`: `{value}` is not a whole number"),
            "a rate counts whole minutes, hours or days, e.g. `rate(90 minutes)` rather than `rate(1.5 hours)`",
        ));
    };
    if value == 0 {
        return Err(ScheduleError::new(
            format!("`{expression}`: a rate must be at least 1"),
            "the shortest EventBridge allows is `rate(1 minute)`; remove the key to turn the schedule off",
        ));
    }
    let rate = |unit: &str| format!("rate({value} {unit})");
    let numbered = |(singular, plural): (&'static str, &'static str)| {
        if value == 1 { singular } else { plural }
    };
    if let Some(&(singular, plural)) = UNITS
        .iter()
        .find(|(singular, plural)| unit == *singular || unit == *plural)
    {
        return match (value == 1, unit == singular) {
            (true, false) => Err(ScheduleError::new(
                format!("`{expression}`: a rate of 1 takes the singular unit"),
                format!("use `{}`", rate(singular)),
            )),
            (false, true) => Err(ScheduleError::new(
                format!("`{expression}`: a rate of {value} takes the plural unit"),
                format!("use `{}`", rate(plural)),
            )),
            _ => Ok(()),
        };
    }
    let lowercase = unit.to_ascii_lowercase();
    let hint = if lowercase.starts_with("week") {
        let days = value.saturating_mul(7);
        format!("EventBridge counts in days: use `rate({days} days)`")
    } else if lowercase.starts_with("sec") {
        "EventBridge schedules no more often than once a minute: use `rate(1 minute)` or longer"
            .to_string()
    } else if let Some(&units) = UNITS
        .iter()
        .find(|(singular, plural)| lowercase == *singular || lowercase == *plural)
    {
        format!("units are lowercase: use `{}`", rate(numbered(units)))
    } else {
        let candidates = UNITS
            .iter()
            .flat_map(|(singular, plural)| [*singular, *plural]);
        match crate::error::did_you_mean(&lowercase, candidates) {
            Some(close) => {
                let units = UNITS
                    .iter()
                    .find(|(singular, plural)| close == *singular || close == *plural)
                    .copied()
                    .unwrap_or(UNITS[2]);
                format!("did you mean `{}`?", rate(numbered(units)))
            }
            None => "the unit is minute(s), hour(s) or day(s), e.g. `rate(7 days)`".to_string(),
        }
    };
    Err(ScheduleError::new(
        format!("`{expression}`: `{unit}` is not a rate unit"),
        hint,
    ))
}

/// One of a cron expression's six fields.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names accepted in place of numbers, the first meaning `min`.
    names: &'static [&'static str],
    /// Special characters beyond `,`, `-`, `*` and digits.
    wildcards: &'static str,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// The fields in order, with the values and wildcards the EventBridge user guide lists.
const FIELDS: [Field; 6] = [
    Field {
        name: "minutes",
        min: 0,
        max: 59,
        names: &[],
        wildcards: "/",
    },
    Field {
        name: "hours",
        min: 0,
        max: 23,
        names: &[],
        wildcards: "/",
    },
    Field {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
        wildcards: "?/LW",
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &MONTHS,
        wildcards: "/",
    },
    Field {
        name: "day-of-week",
        min: 1,
        max: 7,
        names: &DAYS,
        wildcards: "?L#",
    },
    Field {
        name: "year",
        min: 1970,
        max: 2199,
        names: &[],
        wildcards: "/",
    },
];

const DAY_OF_MONTH: usize = 2;
const DAY_OF_WEEK: usize = 4;
const CRON_EXAMPLE: &str = "e.g. `cron(0 3 ? * MON *)` (03:00 UTC every Monday) or `cron(0 3 1 * ? *)` (03:00 UTC on the 1st)";

fn check_cron(expression: &str, inner: &str) -> Result<(), ScheduleError> {
    let fields: Vec<&str> = inner.split_whitespace().collect();
    if fields.len() != FIELDS.len() {
        let hint = if fields.len() == 5 {
            // A Unix crontab line: EventBridge adds a year and wants `?` in one day field.
            let mut fixed: Vec<String> = fields.iter().map(|field| field.to_string()).collect();
            fixed.push("*".into());
            if fixed[DAY_OF_MONTH] == "?" || fixed[DAY_OF_WEEK] == "?" {
                format!("add the year field: `{}`", cron(&fixed))
            } else if let Some(fixed) = question_mark_fix(&fixed) {
                format!(
                    "add the year field and `?` in one day field: `{}`",
                    cron(&fixed)
                )
            } else {
                format!("add the year field and `?` in day-of-month or day-of-week, {CRON_EXAMPLE}")
            }
        } else {
            format!(
                "the fields are minutes, hours, day-of-month, month, day-of-week and year, {CRON_EXAMPLE}"
            )
        };
        return Err(ScheduleError::new(
            format!(
                "`{expression}` has {} fields; EventBridge cron takes six",
                fields.len()
            ),
            hint,
        ));
    }
    for (field, text) in FIELDS.iter().zip(&fields) {
        check_field(field, text).map_err(|why| {
            ScheduleError::new(
                format!("`{expression}`: {} field `{text}` {why}", field.name),
                field_hint(field),
            )
        })?;
    }
    let day_of_month = fields[DAY_OF_MONTH];
    let day_of_week = fields[DAY_OF_WEEK];
    let owned: Vec<String> = fields.iter().map(|field| field.to_string()).collect();
    match (day_of_month == "?", day_of_week == "?") {
        (true, true) => {
            let mut fixed = owned;
            fixed[DAY_OF_MONTH] = "*".into();
            Err(ScheduleError::new(
                format!("`{expression}` has `?` in both day-of-month and day-of-week"),
                format!(
                    "only one of them may be `?`: use `{}` for every day",
                    cron(&fixed)
                ),
            ))
        }
        (false, false) => Err(ScheduleError::new(
            format!(
                "`{expression}` sets both day-of-month (`{day_of_month}`) and day-of-week (`{day_of_week}`); EventBridge needs `?` in one of them"
            ),
            match question_mark_fix(&owned) {
                Some(fixed) => format!("use `{}`", cron(&fixed)),
                None => {
                    let mut by_month = owned.clone();
                    by_month[DAY_OF_WEEK] = "?".into();
                    let mut by_week = owned;
                    by_week[DAY_OF_MONTH] = "?".into();
                    format!(
                        "keep one: `{}` (by day of the month) or `{}` (by day of the week)",
                        cron(&by_month),
                        cron(&by_week)
                    )
                }
            },
        )),
        _ => Ok(()),
    }
}

/// The fields with `?` in place of a day field that is `*` (day-of-week when both are), so
/// the other day field keeps its meaning; `None` when both name days.
fn question_mark_fix(fields: &[String]) -> Option<Vec<String>> {
    let mut fixed = fields.to_vec();
    if fields[DAY_OF_WEEK] == "*" {
        fixed[DAY_OF_WEEK] = "?".into();
    } else if fields[DAY_OF_MONTH] == "*" {
        fixed[DAY_OF_MONTH] = "?".into();
    } else {
        return None;
    }
    Some(fixed)
}

fn cron(fields: &[String]) -> String {
    format!("cron({})", fields.join(" "))
}

fn field_hint(field: &Field) -> String {
    let mut values = format!("{}-{}", field.min, field.max);
    if let (Some(first), Some(last)) = (field.names.first(), field.names.last()) {
        values.push_str(&format!(" or {first}-{last}"));
    }
    let wildcards: Vec<String> = [",", "-", "*"]
        .into_iter()
        .map(str::to_string)
        .chain(field.wildcards.chars().map(String::from))
        .collect();
    format!(
        "{} takes {values} and the wildcards {}; {CRON_EXAMPLE}",
        field.name,
        wildcards.join(" ")
    )
}

/// Why `text` is not a valid value of `field`.
fn check_field(field: &Field, text: &str) -> Result<(), String> {
    if text == "?" {
        return if field.wildcards.contains('?') {
            Ok(())
        } else {
            Err("may not be `?`; only day-of-month and day-of-week take it".into())
        };
    }
    if text.contains('#') && text.contains(',') {
        return Err("lists with `#`; a day-of-week with `#` holds that one expression only".into());
    }
    for item in text.split(',') {
        check_item(field, item)?;
    }
    Ok(())
}

/// One comma-separated item: `*`, a value, a range, an increment or a special day form.
fn check_item(field: &Field, item: &str) -> Result<(), String> {
    if item.is_empty() {
        return Err("has an empty list item".into());
    }
    if item == "?" {
        return Err("uses `?` in a list; `?` stands alone".into());
    }
    if let Some((start, step)) = item.split_once('/') {
        if !field.wildcards.contains('/') {
            return Err(format!("uses `/`, which {} does not take", field.name));
        }
        let step_valid = step.chars().all(|c| c.is_ascii_digit())
            && step
                .parse::<u32>()
                .is_ok_and(|step| step >= 1 && step <= field.max);
        if !step_valid {
            return Err(format!(
                "steps by `{step}`; a step is a whole number from 1 to {}",
                field.max
            ));
        }
        return if start == "*" {
            Ok(())
        } else {
            check_range(field, start)
        };
    }
    if item == "*" {
        return Ok(());
    }
    let upper = item.to_ascii_uppercase();
    if field.wildcards.contains('L') {
        if upper == "L" {
            return Ok(());
        }
        if field.wildcards.contains('W') && upper == "LW" {
            return Ok(());
        }
        if field.wildcards.contains('#')
            && let Some(day) = upper.strip_suffix('L')
        {
            // Day-of-week `5L`: the month's last Thursday.
            return value(field, day).map(|_| ());
        }
    }
    if field.wildcards.contains('W')
        && let Some(day) = upper.strip_suffix('W')
    {
        return value(field, day).map(|_| ());
    }
    if let Some((day, nth)) = upper.split_once('#') {
        if !field.wildcards.contains('#') {
            return Err(format!("uses `#`, which {} does not take", field.name));
        }
        value(field, day)?;
        return match nth.parse::<u32>() {
            Ok(1..=5) if nth.chars().all(|c| c.is_ascii_digit()) => Ok(()),
            _ => Err(format!(
                "asks for occurrence `{nth}` of a weekday; a month has the 1st to the 5th"
            )),
        };
    }
    if upper.contains(['L', 'W']) && !field.names.iter().any(|name| upper.contains(name)) {
        return Err(format!(
            "uses `L` or `W`, which {} does not take in this form",
            field.name
        ));
    }
    check_range(field, item)
}

/// A value or a `start-end` range.
fn check_range(field: &Field, text: &str) -> Result<(), String> {
    match text.split_once('-') {
        Some((start, end)) => {
            value(field, start)?;
            value(field, end)?;
            Ok(())
        }
        None => value(field, text).map(|_| ()),
    }
}

/// A number within the field's bounds, or one of its names.
fn value(field: &Field, text: &str) -> Result<u32, String> {
    if let Some(index) = field
        .names
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
    {
        return Ok(field.min + index as u32);
    }
    let number = text
        .parse::<u32>()
        .ok()
        .filter(|_| !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()));
    match number {
        Some(number) if (field.min..=field.max).contains(&number) => Ok(number),
        Some(number) => Err(format!(
            "holds {number}, outside {}-{}",
            field.min, field.max
        )),
        None => Err(format!(
            "holds `{text}`, which is not a {} value",
            field.name
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(expression: &str) -> ScheduleError {
        check_schedule(expression).expect_err(expression)
    }

    /// The examples of the EventBridge user guide's rate and cron references.
    #[test]
    fn accepts_the_eventbridge_guide_examples() {
        for expression in [
            "rate(1 minute)",
            "rate(5 minutes)",
            "rate(1 hour)",
            "rate(1 day)",
            "rate(7 days)",
            "cron(0 10 * * ? *)",
            "cron(15 12 * * ? *)",
            "cron(0 18 ? * MON-FRI *)",
            "cron(0 8 1 * ? *)",
            "cron(0/15 * * * ? *)",
            "cron(0/10 * ? * MON-FRI *)",
            "cron(0/5 8-17 ? * MON-FRI *)",
            "cron(0 9 ? * 2#1 *)",
            "cron(0 3 ? * MON *)",
            "cron(0 3 1 * ? *)",
        ] {
            assert_eq!(check_schedule(expression), Ok(()), "{expression}");
        }
    }

    #[test]
    fn accepts_every_documented_wildcard() {
        for expression in [
            "cron(0,30 * * JAN,FEB,MAR ? *)",
            "cron(0 0 L * ? *)",
            "cron(0 0 3W * ? *)",
            "cron(0 0 LW * ? *)",
            "cron(0 0 ? * L *)",
            "cron(0 0 ? * 6L *)",
            "cron(0 0 ? * 3#2 2030)",
            "cron(*/5 0-6,22-23 ? * SUN-SAT 2024-2199)",
            "cron(0 0 1/7 * ? 2025/2)",
            "cron(0 12 ? jan-dec mon *)",
        ] {
            assert_eq!(check_schedule(expression), Ok(()), "{expression}");
        }
    }

    #[test]
    fn refuses_a_mismatched_rate_unit_with_the_fix() {
        let error = refused("rate(1 days)");
        assert_eq!(
            error.message,
            "`rate(1 days)`: a rate of 1 takes the singular unit"
        );
        assert_eq!(error.hint, "use `rate(1 day)`");
        assert_eq!(refused("rate(1 hours)").hint, "use `rate(1 hour)`");
        assert_eq!(refused("rate(5 hour)").hint, "use `rate(5 hours)`");
    }

    #[test]
    fn refuses_rates_below_one_minute_and_non_numbers() {
        assert!(refused("rate(0 days)").message.contains("at least 1"));
        assert!(refused("rate(-1 days)").message.contains("whole number"));
        assert!(refused("rate(1.5 hours)").message.contains("whole number"));
        assert!(refused("rate(30 seconds)").hint.contains("once a minute"));
        assert!(refused("rate(days)").message.contains("a value and a unit"));
        assert!(refused("rate(7)").message.contains("a value and a unit"));
        assert!(refused("rate()").message.contains("a value and a unit"));
    }

    #[test]
    fn suggests_a_rate_unit() {
        assert_eq!(
            refused("rate(2 weeks)").hint,
            "EventBridge counts in days: use `rate(14 days)`"
        );
        assert_eq!(
            refused("rate(7 Days)").hint,
            "units are lowercase: use `rate(7 days)`"
        );
        assert_eq!(
            refused("rate(5 minuts)").hint,
            "did you mean `rate(5 minutes)`?"
        );
    }

    #[test]
    fn refuses_cron_without_a_question_mark() {
        let error = refused("cron(0 0 * * * *)");
        assert_eq!(
            error.message,
            "`cron(0 0 * * * *)` sets both day-of-month (`*`) and day-of-week (`*`); EventBridge needs `?` in one of them"
        );
        assert_eq!(error.hint, "use `cron(0 0 * * ? *)`");
        assert_eq!(
            refused("cron(0 0 * * MON *)").hint,
            "use `cron(0 0 ? * MON *)`"
        );
        assert_eq!(
            refused("cron(0 0 1 * MON *)").hint,
            "keep one: `cron(0 0 1 * ? *)` (by day of the month) or `cron(0 0 ? * MON *)` (by day of the week)"
        );
        let both = refused("cron(0 0 ? * ? *)");
        assert!(both.message.contains("`?` in both"), "{}", both.message);
        assert!(both.hint.contains("`cron(0 0 * * ? *)`"), "{}", both.hint);
    }

    #[test]
    fn refuses_the_wrong_number_of_fields() {
        let unix = refused("cron(0 3 * * 1)");
        assert_eq!(
            unix.message,
            "`cron(0 3 * * 1)` has 5 fields; EventBridge cron takes six"
        );
        assert_eq!(
            unix.hint,
            "add the year field and `?` in one day field: `cron(0 3 ? * 1 *)`"
        );
        assert!(
            refused("cron(0 0 0 * * ? *)")
                .message
                .contains("has 7 fields")
        );
        assert!(refused("cron()").message.contains("has 0 fields"));
    }

    #[test]
    fn refuses_values_and_wildcards_a_field_does_not_take() {
        for (expression, wanted) in [
            (
                "cron(60 0 * * ? *)",
                "minutes field `60` holds 60, outside 0-59",
            ),
            (
                "cron(0 24 * * ? *)",
                "hours field `24` holds 24, outside 0-23",
            ),
            (
                "cron(0 0 32 * ? *)",
                "day-of-month field `32` holds 32, outside 1-31",
            ),
            (
                "cron(0 0 0 * ? *)",
                "day-of-month field `0` holds 0, outside 1-31",
            ),
            (
                "cron(0 0 * 13 ? *)",
                "month field `13` holds 13, outside 1-12",
            ),
            (
                "cron(0 0 * JANUARY ? *)",
                "month field `JANUARY` holds `JANUARY`",
            ),
            (
                "cron(0 0 ? * 8 *)",
                "day-of-week field `8` holds 8, outside 1-7",
            ),
            (
                "cron(0 0 ? * MONDAY *)",
                "day-of-week field `MONDAY` holds `MONDAY`",
            ),
            (
                "cron(0 0 * * ? 1969)",
                "year field `1969` holds 1969, outside 1970-2199",
            ),
            ("cron(0 0 * * ? 2200)", "year field `2200` holds 2200"),
            ("cron(? 0 * * ? *)", "minutes field `?` may not be `?`"),
            ("cron(0 0 * ? ? *)", "month field `?` may not be `?`"),
            ("cron(0 L * * ? *)", "hours field `L`"),
            ("cron(0 0 ? * 1/2 *)", "day-of-week field `1/2` uses `/`"),
            ("cron(0 0 3#1 * ? *)", "day-of-month field `3#1` uses `#`"),
            (
                "cron(0 0 ? * 3#1,6#3 *)",
                "a day-of-week with `#` holds that one expression only",
            ),
            ("cron(0 0 ? * 3#6 *)", "occurrence `6`"),
            ("cron(0/0 * * * ? *)", "steps by `0`"),
            ("cron(0/60 * * * ? *)", "steps by `60`"),
            ("cron(0,,5 * * * ? *)", "empty list item"),
            ("cron(a * * * ? *)", "minutes field `a` holds `a`"),
        ] {
            let error = refused(expression);
            assert!(
                error.message.contains(wanted),
                "{expression}: `{}` lacks `{wanted}`",
                error.message
            );
        }
        assert!(
            refused("cron(60 0 * * ? *)")
                .hint
                .starts_with("minutes takes 0-59 and the wildcards , - * /")
        );
        assert!(
            refused("cron(0 0 ? * 8 *)")
                .hint
                .starts_with("day-of-week takes 1-7 or SUN-SAT and the wildcards , - * ? L #")
        );
    }

    #[test]
    fn refuses_what_is_neither_rate_nor_cron() {
        for expression in [
            "every week",
            "rate 7 days",
            "Rate(7 days)",
            "cron(0 0 * * ? *",
            "at(2025-01-01T00:00:00)",
            "",
        ] {
            assert!(
                refused(expression)
                    .message
                    .contains("is not a schedule expression"),
                "{expression}"
            );
        }
    }
}
