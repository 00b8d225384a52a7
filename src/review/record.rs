//! A review item as the router keeps it (`router/handler.py`): the JSON record beside the
//! photo, and the keys an item's files live under in the data bucket.

use serde::{Deserialize, Serialize};

use crate::config::review::PREFIX;

/// The router's record of a low-confidence answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    pub request_id: Option<String>,
    pub received_at: String,
    pub environment: String,
    pub image: ImageRef,
    pub parent: Answer,
    pub child: Answer,
    pub threshold: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRef {
    pub key: String,
    pub content_type: String,
    pub bytes: u64,
    pub sha256: String,
}

/// One model's answer: its top class, that class's confidence, and its top five.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub name: String,
    pub confidence: f64,
    pub model: String,
    pub package_version: String,
    pub top5: Vec<Ranked>,
    pub package: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    pub name: String,
    pub confidence: f64,
}

/// The keys of one parent model's review items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub parent: String,
}

impl Keys {
    pub fn pending_prefix(&self) -> String {
        format!("{PREFIX}pending/{}/", self.parent)
    }
    pub fn record(&self, stem: &str) -> String {
        format!("{}{stem}.json", self.pending_prefix())
    }
    pub fn claim(&self, stem: &str) -> String {
        format!("{PREFIX}claims/{}/{stem}.json", self.parent)
    }
    pub fn done(&self, stem: &str) -> String {
        format!("{PREFIX}done/{}/{stem}.json", self.parent)
    }
    /// The item's name from its record's key: `review/pending/plants/<stem>.json`.
    pub fn stem<'a>(&self, record_key: &'a str) -> Option<&'a str> {
        let prefix = self.pending_prefix();
        let stem = record_key
            .strip_prefix(prefix.as_str())?
            .strip_suffix(".json")?;
        is_stem(stem).then_some(stem)
    }
}

/// An item name the router writes: letters, digits, `-`, `_` (no path separators).
pub fn is_stem(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 200
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// The file extension of a photo from its content type.
pub fn extension(content_type: &str) -> &'static str {
    if content_type == "image/png" {
        "png"
    } else {
        "jpg"
    }
}

/// A class name usable as a folder of `raw/<model>/<label>/`: not empty, no `/`, not `.`
/// or `..`.
pub fn is_folder_name(label: &str) -> bool {
    !label.is_empty() && !label.contains('/') && label != "." && label != ".." && label.len() <= 255
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_parent_and_the_item() {
        let keys = Keys {
            parent: "plants".into(),
        };
        assert_eq!(
            keys.record("20261201T070509Z-abc"),
            "review/pending/plants/20261201T070509Z-abc.json"
        );
        assert_eq!(
            keys.stem("review/pending/plants/20261201T070509Z-abc.json"),
            Some("20261201T070509Z-abc")
        );
        assert_eq!(keys.stem("review/pending/plants/x.jpg"), None);
        assert_eq!(keys.stem("review/pending/plants/../x.json"), None);
        assert_eq!(keys.claim("a"), "review/claims/plants/a.json");
        assert_eq!(keys.done("a"), "review/done/plants/a.json");
        assert!(!is_folder_name("a/b") && !is_folder_name("..") && is_folder_name("white oak"));
    }
}
