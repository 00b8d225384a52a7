//! The review page as HTML, rendered on the server: the photo, both models' top five, the
//! choices (confirm, another species, another sub-group, reject, skip) with their keyboard
//! shortcuts, the progress count, and what happened to the last decision.

use super::queue::Item;

/// What happened last, shown above the photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub ok: bool,
    pub text: String,
}

pub enum Content<'a> {
    Item(&'a Item),
    Broken {
        stem: &'a str,
        problem: &'a str,
    },
    Empty,
    /// The queue could not be read (the reason is in the flash).
    Unavailable,
}

pub struct View<'a> {
    pub environment: &'a str,
    pub parent: &'a str,
    /// Photos waiting; None when the queue could not be read.
    pub pending: Option<usize>,
    pub reviewed: u32,
    pub flash: Option<&'a Flash>,
    pub content: Content<'a>,
}

/// Text made safe inside HTML elements and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}\
header{display:flex;justify-content:space-between;align-items:center;padding:.6rem 1.2rem;background:#1d2330;color:#fff}\
header h1{font-size:1.05rem;margin:0}#progress{font-variant-numeric:tabular-nums}\
main{display:grid;grid-template-columns:minmax(280px,1fr) minmax(320px,1fr);gap:1.2rem;padding:1.2rem;max-width:1200px;margin:auto}\
@media (max-width:800px){main{grid-template-columns:1fr}}\
.photo img{max-width:100%;max-height:70vh;border-radius:6px;background:#ddd}\
.flash{margin:1rem 1.2rem 0;padding:.6rem .9rem;border-radius:6px}.flash.ok{background:#e3f4e8}.flash.error{background:#fde8e8}\
table{border-collapse:collapse;width:100%;margin-bottom:1rem}td,th{padding:.25rem .4rem;text-align:left;border-bottom:1px solid #e2e5ea}\
td.n{text-align:right;font-variant-numeric:tabular-nums}form{display:inline}\
button{font:inherit;padding:.45rem .8rem;margin:.15rem;border-radius:6px;border:1px solid #9aa3b2;background:#fff;cursor:pointer}\
button.primary{background:#1f6feb;color:#fff;border-color:#1f6feb}kbd{font-size:.75rem;border:1px solid #aaa;border-radius:3px;padding:0 .25rem;margin-left:.3rem;background:#f3f3f3;color:#333}\
input[type=search]{font:inherit;padding:.4rem;width:16rem}.problem{padding:1.2rem;max-width:900px;margin:auto}";

const SCRIPT: &str = r#"document.addEventListener('keydown', function (event) {
  var typing = event.target && (event.target.tagName === 'INPUT');
  if (event.key === '/' && !typing) { var s = document.getElementById('search'); if (s) { s.focus(); event.preventDefault(); } return; }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) { return; }
  var map = {'Enter': 'choice-1', '1': 'choice-1', '2': 'choice-2', '3': 'choice-3', '4': 'choice-4', '5': 'choice-5', 'r': 'reject', 's': 'skip'};
  var id = map[event.key];
  var button = id && document.getElementById(id);
  if (button) { event.preventDefault(); button.click(); }
});"#;

pub fn render(view: &View) -> String {
    let mut html = String::new();
    html.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    html.push_str(&format!(
        "<title>Review · {} · {}</title><style>{STYLE}</style></head><body>",
        escape(view.parent),
        escape(view.environment)
    ));
    html.push_str(&format!(
        "<header><h1>Review low-confidence photos · {} · {}</h1><span id=\"progress\">{} waiting · {} reviewed by you</span></header>",
        escape(view.parent),
        escape(view.environment),
        view.pending.map_or_else(|| "?".to_string(), |pending| pending.to_string()),
        view.reviewed
    ));
    if let Some(flash) = view.flash {
        html.push_str(&format!(
            "<div class=\"flash {}\" id=\"flash\" role=\"status\">{}</div>",
            if flash.ok { "ok" } else { "error" },
            escape(&flash.text)
        ));
    }
    match &view.content {
        Content::Item(item) => item_html(item, &mut html),
        Content::Broken { stem, problem } => {
            html.push_str(&format!(
                "<div class=\"problem\" id=\"broken\" data-item=\"{}\"><h2>This photo cannot be reviewed</h2><p>{}</p>\
                 <p>Nothing was moved or deleted. Skip it: it stays where it is and expires with the unreviewed photos.</p>{}</div>",
                escape(stem),
                escape(problem),
                action_button(stem, "skip", "", "Skip", "skip", "s", false)
            ));
        }
        Content::Unavailable => html.push_str(
            "<div class=\"problem\" id=\"unavailable\"><h2>The review queue cannot be read</h2><p>Nothing was changed. Reload once the problem above is fixed.</p></div>",
        ),
        Content::Empty => html.push_str(
            "<div class=\"problem\" id=\"empty\"><h2>Nothing to review</h2><p>No photo is waiting that another reviewer does not hold. Reload to look again.</p></div>",
        ),
    }
    html.push_str(&format!("<script>{SCRIPT}</script></body></html>"));
    html
}

fn action_button(
    stem: &str,
    action: &str,
    label: &str,
    text: &str,
    id: &str,
    key: &str,
    primary: bool,
) -> String {
    format!(
        "<form method=\"post\" action=\"/decide\"><input type=\"hidden\" name=\"item\" value=\"{}\">\
         <input type=\"hidden\" name=\"action\" value=\"{action}\"><input type=\"hidden\" name=\"label\" value=\"{}\">\
         <button type=\"submit\" id=\"{id}\"{}>{}<kbd>{key}</kbd></button></form>",
        escape(stem),
        escape(label),
        if primary { " class=\"primary\"" } else { "" },
        escape(text),
    )
}

fn ranking(title: &str, answer: &super::record::Answer, html: &mut String) {
    html.push_str(&format!(
        "<h3>{} <small>(model {} version {})</small></h3><table><tr><th>class</th><th>confidence</th></tr>",
        escape(title),
        escape(&answer.model),
        escape(&answer.package_version)
    ));
    for ranked in &answer.top5 {
        html.push_str(&format!(
            "<tr><td>{}</td><td class=\"n\">{:.3}</td></tr>",
            escape(&ranked.name),
            ranked.confidence
        ));
    }
    html.push_str("</table>");
}

fn item_html(item: &Item, html: &mut String) {
    let record = &item.record;
    let stem = &item.stem;
    html.push_str(&format!(
        "<main data-item=\"{}\"><section class=\"photo\"><img id=\"photo\" src=\"/image/{}\" alt=\"the photo to label\">\
         <p><small>received {} · request {}</small></p></section><section>",
        escape(stem),
        escape(stem),
        escape(&record.received_at),
        escape(record.request_id.as_deref().unwrap_or("-"))
    ));
    html.push_str(&format!(
        "<p>The models said <strong>{}</strong> / <strong id=\"answer\">{}</strong>. Which species is it?</p>",
        escape(&record.parent.name),
        escape(&record.child.name)
    ));
    html.push_str("<div id=\"choices\">");
    for (index, ranked) in record
        .child
        .top5
        .iter()
        .filter(|ranked| item.species.contains(&ranked.name))
        .enumerate()
    {
        let text = if index == 0 {
            format!("Confirm {}", ranked.name)
        } else {
            ranked.name.clone()
        };
        html.push_str(&action_button(
            stem,
            "species",
            &ranked.name,
            &text,
            &format!("choice-{}", index + 1),
            &(index + 1).to_string(),
            index == 0,
        ));
    }
    html.push_str("</div>");
    html.push_str(&format!(
        "<h3>Another {} species</h3><form method=\"post\" action=\"/decide\" id=\"species-form\">\
         <input type=\"hidden\" name=\"item\" value=\"{}\"><input type=\"hidden\" name=\"action\" value=\"species\">\
         <input type=\"search\" id=\"search\" name=\"label\" list=\"species\" placeholder=\"type to search {} classes\" autocomplete=\"off\" required>\
         <button type=\"submit\">Label<kbd>/</kbd></button></form><datalist id=\"species\">",
        escape(&record.child.model),
        escape(stem),
        item.species.len()
    ));
    for name in &item.species {
        html.push_str(&format!("<option value=\"{}\">", escape(name)));
    }
    html.push_str("</datalist>");
    html.push_str(&format!(
        "<h3>Not {} at all? Label its sub-group</h3><form method=\"post\" action=\"/decide\" id=\"subgroup-form\">\
         <input type=\"hidden\" name=\"item\" value=\"{}\"><input type=\"hidden\" name=\"action\" value=\"subgroup\">\
         <select name=\"label\" id=\"subgroup\">",
        escape(&record.parent.name),
        escape(stem)
    ));
    for name in item
        .subgroups
        .iter()
        .filter(|name| **name != record.parent.name)
    {
        html.push_str(&format!(
            "<option value=\"{}\">{}</option>",
            escape(name),
            escape(name)
        ));
    }
    html.push_str("</select><button type=\"submit\">Label the sub-group</button></form><p>");
    html.push_str(&action_button(
        stem,
        "reject",
        "",
        "Reject: not usable",
        "reject",
        "r",
        false,
    ));
    html.push_str(&action_button(stem, "skip", "", "Skip", "skip", "s", false));
    html.push_str("</p>");
    ranking(
        &format!("Sub-group ({})", record.parent.model),
        &record.parent,
        html,
    );
    ranking(
        &format!("Species ({})", record.child.model),
        &record.child,
        html,
    );
    html.push_str("</section></main>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_records_cannot_open_markup() {
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }
}
