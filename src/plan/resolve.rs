//! Template text as a reviewer reads it: `${AWS::AccountId}`, `${AWS::Partition}` and the
//! stack's known parameters replaced by their values, `!Sub` strings that resolve fully shown
//! as the string they become.

use std::collections::BTreeMap;

use serde_json::Value;

/// The pseudo parameters' values for an account and region.
pub fn pseudo_parameters(account_id: &str, region: &str) -> BTreeMap<String, String> {
    let (partition, suffix) = if region.starts_with("cn-") {
        ("aws-cn", "amazonaws.com.cn")
    } else if region.starts_with("us-gov-") {
        ("aws-us-gov", "amazonaws.com")
    } else {
        ("aws", "amazonaws.com")
    };
    [
        ("AWS::Partition", partition),
        ("AWS::AccountId", account_id),
        ("AWS::Region", region),
        ("AWS::URLSuffix", suffix),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect()
}

/// `${Name}` and a whole `(Ref Name)` replaced where `values` knows the name.
pub fn substitute(text: &str, values: &BTreeMap<String, String>) -> String {
    if let Some(name) = text
        .strip_prefix("(Ref ")
        .and_then(|rest| rest.strip_suffix(')'))
        && let Some(value) = values.get(name)
    {
        return value.clone();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) if values.contains_key(&after[..end]) => {
                out.push_str(&values[&after[..end]]);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `value` with every `{"Fn::Sub": …}` and `{"Ref": …}` that `values` resolves replaced by
/// its text; what cannot be resolved (a resource's attribute) is left as written.
pub fn resolve_value(value: &mut Value, values: &BTreeMap<String, String>) {
    match value {
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| resolve_value(item, values)),
        Value::Object(map) if map.len() == 1 => {
            let resolved = match map.iter().next() {
                Some((key, Value::String(text))) if key == "Fn::Sub" => {
                    Some(substitute(text, values)).filter(|text| !text.contains("${"))
                }
                Some((key, Value::String(name))) if key == "Ref" => values.get(name).cloned(),
                _ => None,
            };
            match resolved {
                Some(text) => *value = Value::String(text),
                None => map
                    .values_mut()
                    .for_each(|item| resolve_value(item, values)),
            }
        }
        Value::Object(map) => map
            .values_mut()
            .for_each(|item| resolve_value(item, values)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subs_that_resolve_fully_become_strings() {
        let mut values = pseudo_parameters("222222222222", "eu-west-1");
        values.insert("Bucket".into(), "images".into());
        let mut value = json!({"AWS": [
            {"Fn::Sub": "arn:${AWS::Partition}:iam::444444444444:root"},
            {"Fn::Sub": "${Data.Arn}/${Bucket}"},
            {"Ref": "Bucket"},
            {"Ref": "Data"}
        ]});
        resolve_value(&mut value, &values);
        assert_eq!(
            value,
            json!({"AWS": [
                "arn:aws:iam::444444444444:root",
                {"Fn::Sub": "${Data.Arn}/${Bucket}"},
                "images",
                {"Ref": "Data"}
            ]})
        );
    }
}
