//! Writes a template as canonical YAML: block style, two-space indents, short-form tags.
//!
//! A hand-written writer rather than serde's: strings that YAML 1.1 readers (PyYAML, so
//! cfn-lint) would take for booleans, numbers or dates (`on`, `no`, `2010-09-09`) are quoted,
//! and multi-line strings (policies, pipeline definitions) stay readable as literal blocks.

use super::Node;

/// Where the node being written starts: on its own lines, after `key:`, or after `-`.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    Top,
    AfterKey,
    AfterDash,
}

pub fn write(node: &Node) -> String {
    let mut out = String::new();
    emit(node, 0, Place::Top, &mut out);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// `indent` is the column where the entry that holds `node` starts; nested blocks go 2 deeper.
fn emit(node: &Node, indent: usize, place: Place, out: &mut String) {
    let child = if place == Place::Top { 0 } else { indent + 2 };
    match node {
        Node::Map(map) if !map.is_empty() => {
            for (index, (key, value)) in map.iter().enumerate() {
                if index == 0 && place == Place::AfterDash {
                    out.push(' ');
                } else {
                    if index == 0 && place == Place::AfterKey {
                        out.push('\n');
                    }
                    pad(out, child);
                }
                out.push_str(&scalar(key));
                out.push(':');
                emit(value, child, Place::AfterKey, out);
            }
        }
        Node::List(items) if !items.is_empty() && flow_list(items).is_some() => {
            if place != Place::Top {
                out.push(' ');
            }
            out.push_str(&flow_list(items).unwrap_or_default());
            out.push('\n');
        }
        Node::List(items) if !items.is_empty() => {
            for (index, item) in items.iter().enumerate() {
                if index == 0 && place == Place::AfterDash {
                    out.push(' ');
                } else {
                    if index == 0 && place == Place::AfterKey {
                        out.push('\n');
                    }
                    pad(out, child);
                }
                out.push('-');
                emit(item, child, Place::AfterDash, out);
            }
        }
        Node::Intrinsic(intrinsic) => {
            if place != Place::Top {
                out.push(' ');
            }
            out.push('!');
            out.push_str(intrinsic.function.tag());
            let nested = match &intrinsic.argument {
                Node::Map(map) => !map.is_empty(),
                Node::List(items) => !items.is_empty(),
                Node::String(text) => text.contains('\n'),
                Node::Intrinsic(_) => true,
                _ => false,
            };
            if nested {
                // A tag cannot carry another tag directly, so a nested intrinsic goes below.
                if let Node::Intrinsic(_) = intrinsic.argument {
                    out.push('\n');
                    pad(out, child);
                    emit_long_form(&intrinsic.argument, child, out);
                } else {
                    emit(&intrinsic.argument, indent, Place::AfterKey, out);
                }
            } else {
                emit(&intrinsic.argument, indent, Place::AfterKey, out);
            }
        }
        Node::String(text) if text.contains('\n') => {
            literal_block(text, child, out);
        }
        leaf => {
            if place != Place::Top {
                out.push(' ');
            }
            out.push_str(&leaf_text(leaf));
            out.push('\n');
        }
    }
}

/// `Fn::X: <argument>` as the only entry of a map at `indent`.
fn emit_long_form(node: &Node, indent: usize, out: &mut String) {
    if let Node::Intrinsic(intrinsic) = node {
        out.push_str(&intrinsic.function.key());
        out.push(':');
        emit(&intrinsic.argument, indent, Place::AfterKey, out);
    }
}

/// Short lists of plain values read best inline: `[DataKey, Arn]`.
fn flow_list(items: &[Node]) -> Option<String> {
    const MAX_WIDTH: usize = 60;
    let mut parts = Vec::with_capacity(items.len());
    for item in items {
        let text = match item {
            Node::String(text) if text.contains('\n') => return None,
            Node::String(text) => {
                let text = scalar(text);
                if !text.starts_with(['\'', '"']) && text.contains([',', '[', ']', '{', '}']) {
                    format!("'{text}'")
                } else {
                    text
                }
            }
            Node::Null | Node::Bool(_) | Node::Number(_) => leaf_text(item),
            _ => return None,
        };
        parts.push(text);
    }
    let line = format!("[{}]", parts.join(", "));
    (line.len() <= MAX_WIDTH).then_some(line)
}

fn leaf_text(node: &Node) -> String {
    match node {
        Node::Null => "null".into(),
        Node::Bool(flag) => flag.to_string(),
        Node::Number(number) => number.to_string(),
        Node::String(text) => scalar(text),
        Node::Map(_) => "{}".into(),
        Node::List(_) => "[]".into(),
        Node::Intrinsic(_) => String::new(),
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A string as a plain, single-quoted or double-quoted scalar, whichever is safe.
pub fn scalar(text: &str) -> String {
    if is_plain_safe(text) {
        text.to_string()
    } else if text.chars().all(|c| !c.is_control()) {
        format!("'{}'", text.replace('\'', "''"))
    } else {
        serde_json::to_string(text).unwrap_or_default()
    }
}

/// Plain only when every YAML 1.1 and 1.2 reader takes it for this same string.
fn is_plain_safe(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '/' || first == '_' || first == '$') {
        return false;
    }
    if text.ends_with([' ', ':']) || text.contains(": ") || text.contains(" #") {
        return false;
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || " -_./:@$(){}=+,*^".contains(c);
    if !text.chars().all(allowed) {
        return false;
    }
    let reserved = [
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf",
    ];
    !reserved.contains(&text.to_ascii_lowercase().as_str())
}

/// `|-`, `|` or `|+` by how the text ends; an indentation indicator when it starts with a
/// space. Text whose lines end in spaces, or hold tabs or control characters, is quoted.
fn literal_block(text: &str, indent: usize, out: &mut String) {
    let awkward = text
        .split('\n')
        .any(|line| line.ends_with(' ') || line.chars().any(|c| c.is_control() && c != '\n'));
    if awkward {
        out.push(' ');
        out.push_str(&serde_json::to_string(text).unwrap_or_default());
        out.push('\n');
        return;
    }
    let body = text.trim_end_matches('\n');
    let trailing = text.len() - body.len();
    out.push_str(" |");
    if body.starts_with(' ') {
        out.push('2');
    }
    out.push_str(match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    });
    out.push('\n');
    for line in body.split('\n') {
        if !line.is_empty() {
            pad(out, indent);
            out.push_str(line);
        }
        out.push('\n');
    }
    for _ in 1..trailing {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_what_yaml_1_1_would_misread() {
        for text in [
            "on",
            "No",
            "2010-09-09",
            "0755",
            "1e3",
            "",
            "~",
            "-x",
            "a: b",
            "#x",
            "*x",
            "!x",
        ] {
            assert!(scalar(text).starts_with('\''), "{text} was left plain");
        }
        for text in [
            "Bucket",
            "arn:aws:s3:::x/*",
            "${AWS::Region}",
            "AWS::S3::Bucket",
            "s3:GetObject",
        ] {
            assert_eq!(scalar(text), text);
        }
        assert_eq!(scalar("it's"), "'it''s'");
        assert_eq!(scalar("tab\there"), "\"tab\\there\"");
    }
}
