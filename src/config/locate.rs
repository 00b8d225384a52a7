//! Finds where a key path (`storage.data_bucket_name`, `models[1].name`) sits in a YAML file.
//!
//! serde gives positions only for parse errors; checks that run after parsing (bucket naming
//! rules, unknown parents) use this index to point at the offending line.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

use crate::error::Position;

/// Positions of every value in one YAML document, by key path.
#[derive(Debug, Default, Clone)]
pub struct Locations {
    values: HashMap<String, Position>,
}

enum Frame {
    Mapping { path: String, key: Option<String> },
    Sequence { path: String, index: usize },
}

impl Locations {
    /// Indexes `text`; a document the parser rejects yields an empty index (the serde pass
    /// reports the syntax error itself).
    pub fn index(text: &str) -> Self {
        let mut values = HashMap::new();
        let mut stack: Vec<Frame> = Vec::new();
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            let position = Position {
                line: span.start.line(),
                column: span.start.col() + 1,
            };
            match event {
                Event::Scalar(value, ..) => {
                    if let Some(Frame::Mapping { key, .. }) = stack.last_mut()
                        && key.is_none()
                    {
                        *key = Some(value.into_owned());
                        continue;
                    }
                    let path = child_path(&mut stack);
                    values.insert(path, position);
                }
                Event::MappingStart(..) => {
                    let path = child_path(&mut stack);
                    values.insert(path.clone(), position);
                    stack.push(Frame::Mapping { path, key: None });
                }
                Event::SequenceStart(..) => {
                    let path = child_path(&mut stack);
                    values.insert(path.clone(), position);
                    stack.push(Frame::Sequence { path, index: 0 });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                _ => {}
            }
        }
        Locations { values }
    }

    /// The position of the value at `path`, or of its closest enclosing value.
    pub fn find(&self, path: &str) -> Option<Position> {
        let mut path = path;
        loop {
            if let Some(position) = self.values.get(path) {
                return Some(*position);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }

    /// Whether this document sets the value at `path` itself.
    pub fn contains(&self, path: &str) -> bool {
        self.values.contains_key(path)
    }
}

/// The path of the node that starts now, consuming the pending key or sequence slot.
fn child_path(stack: &mut [Frame]) -> String {
    let path = match stack.last() {
        None => String::new(),
        Some(Frame::Mapping { path, key }) => {
            let key = key.as_deref().unwrap_or_default();
            if path.is_empty() {
                key.to_string()
            } else {
                format!("{path}.{key}")
            }
        }
        Some(Frame::Sequence { path, index }) => format!("{path}[{index}]"),
    };
    advance(stack);
    path
}

/// Moves the innermost container past the node just finished.
fn advance(stack: &mut [Frame]) {
    match stack.last_mut() {
        Some(Frame::Mapping { key, .. }) => *key = None,
        Some(Frame::Sequence { index, .. }) => *index += 1,
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "project: demo\nstorage:\n  data_bucket_name: Bad_Name\nmodels:\n  - name: plants\n  - name: trees\n    parent: plants\n";

    #[test]
    fn finds_nested_values() {
        let locations = Locations::index(TEXT);
        assert_eq!(
            locations.find("storage.data_bucket_name"),
            Some(Position {
                line: 3,
                column: 21
            })
        );
        assert_eq!(
            locations.find("models[1].parent"),
            Some(Position {
                line: 7,
                column: 13
            })
        );
        assert_eq!(
            locations.find("project"),
            Some(Position {
                line: 1,
                column: 10
            })
        );
    }

    #[test]
    fn falls_back_to_the_enclosing_value() {
        let locations = Locations::index(TEXT);
        assert_eq!(
            locations.find("models[0].missing"),
            Some(Position { line: 5, column: 5 })
        );
        assert!(!locations.contains("models[0].missing"));
    }
}
