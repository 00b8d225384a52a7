//! The review page's HTTP server, on 127.0.0.1 only: `GET /` claims and shows the next photo,
//! `GET /image/<item>` streams a photo through the tool (never a bucket URL), `POST /decide`
//! carries out a decision. A browser gets in with the access token in the address the command
//! prints, which swaps it for a session cookie; requests naming another host are refused, so a
//! web page elsewhere cannot drive the reviewer's credentials.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::page::{Content, Flash, View, escape, render};
use super::queue::{Decision, Next, Queue, Reviewer, Verdict};
use super::record::is_stem;
use crate::aws::review_store::ReviewStore;

const COOKIE: &str = "mlops_review";

#[derive(Debug, Default)]
struct Session {
    skipped: BTreeSet<String>,
    reviewed: u32,
    flash: Option<Flash>,
}

pub struct App<S> {
    pub queue: Queue<S>,
    /// The secret in the printed address.
    pub token: String,
    /// `Host` values a request may carry: `127.0.0.1:<port>`, `localhost:<port>`.
    pub hosts: Vec<String>,
    /// The caller's ARN, recorded in claims and audit records.
    pub reviewer: String,
    /// Seconds since the Unix epoch.
    pub clock: Box<dyn Fn() -> u64 + Send + Sync>,
    sessions: Mutex<BTreeMap<String, Session>>,
}

impl<S: ReviewStore + 'static> App<S> {
    pub fn new(
        queue: Queue<S>,
        token: String,
        port: u16,
        reviewer: String,
        clock: Box<dyn Fn() -> u64 + Send + Sync>,
    ) -> Self {
        App {
            queue,
            token,
            hosts: vec![format!("127.0.0.1:{port}"), format!("localhost:{port}")],
            reviewer,
            clock,
            sessions: Mutex::default(),
        }
    }

    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/", get(index::<S>))
            .route("/image/{item}", get(image::<S>))
            .route("/decide", post(decide::<S>))
            .with_state(self)
    }

    fn with_session<T>(&self, id: &str, f: impl FnOnce(&mut Session) -> T) -> T {
        let mut sessions = self
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(sessions.entry(id.to_string()).or_default())
    }

    fn known(&self, id: &str) -> bool {
        self.sessions
            .lock()
            .map(|sessions| sessions.contains_key(id))
            .unwrap_or(false)
    }

    fn reviewer(&self, session: &str) -> Reviewer {
        Reviewer {
            arn: self.reviewer.clone(),
            session: session.to_string(),
        }
    }
}

/// A fresh random hex string (session ids, the access token).
pub fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    // Without the system's randomness there is no safe token; an empty one admits nobody.
    if getrandom::fill(&mut buffer).is_err() {
        return String::new();
    }
    buffer.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn refuse(status: StatusCode, text: &str) -> Response {
    (
        status,
        Html(format!(
            "<!doctype html><meta charset=\"utf-8\"><title>Review</title><p>{}</p>",
            escape(text)
        )),
    )
        .into_response()
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// Why a request is refused: its status and what the page says.
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        refuse(self.0, &self.1)
    }
}

/// The request's session, or the answer refusing it.
fn session<S: ReviewStore + 'static>(app: &App<S>, headers: &HeaderMap) -> Result<String, Refused> {
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or_default();
    if !app.hosts.iter().any(|allowed| allowed == host) {
        return Err(Refused(
            StatusCode::FORBIDDEN,
            format!("This review server answers only {}.", app.hosts[0]),
        ));
    }
    match cookie(headers) {
        Some(id) if app.known(&id) => Ok(id),
        _ => Err(Refused(
            StatusCode::FORBIDDEN,
            "Open the address `mlops-infra review` printed: it carries this server's access token."
                .into(),
        )),
    }
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

fn see_other(location: &str, set_cookie: Option<String>) -> Response {
    let mut response = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_string())],
    )
        .into_response();
    if let Some(value) = set_cookie
        && let Ok(value) = value.parse()
    {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn index<S: ReviewStore + 'static>(
    State(app): State<Arc<App<S>>>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    if let Some(token) = query.token {
        if app.token.is_empty() || token != app.token {
            return refuse(
                StatusCode::FORBIDDEN,
                "This access token is not this server's; open the address `mlops-infra review` printed.",
            );
        }
        let id = random_hex(16);
        app.with_session(&id, |_| ());
        return see_other(
            "/",
            Some(format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict")),
        );
    }
    let id = match session(&app, &headers) {
        Ok(id) => id,
        Err(refused) => return refused.into_response(),
    };
    let reviewer = app.reviewer(&id);
    let (skipped, flash, reviewed) = app.with_session(&id, |session| {
        (
            session.skipped.clone(),
            session.flash.take(),
            session.reviewed,
        )
    });
    let settings = &app.queue.settings;
    let now = (app.clock)();
    let next = app.queue.next(&reviewer, &skipped, now).await;
    let pending = app.queue.pending().await.map(|items| items.len());
    let (flash, next) = match (next, pending) {
        (Ok(next), Ok(pending)) => (flash, Ok((next, pending))),
        (Err(error), _) | (_, Err(error)) => (
            Some(Flash {
                ok: false,
                text: format!("{error}; {}", error.hint()),
            }),
            Err(()),
        ),
    };
    let (content_next, pending) = match &next {
        Ok((next, pending)) => (Some(next), Some(*pending)),
        Err(()) => (None, None),
    };
    let content = match content_next {
        Some(Some(Next::Ready(item))) => Content::Item(item),
        Some(Some(Next::Broken { stem, problem })) => Content::Broken { stem, problem },
        Some(None) => Content::Empty,
        None => Content::Unavailable,
    };
    let view = View {
        environment: &settings.environment,
        parent: &settings.parent,
        pending,
        reviewed,
        flash: flash.as_ref(),
        content,
    };
    let status = if matches!(view.content, Content::Unavailable) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Html(render(&view)),
    )
        .into_response()
}

async fn image<S: ReviewStore + 'static>(
    State(app): State<Arc<App<S>>>,
    headers: HeaderMap,
    Path(item): Path<String>,
) -> Response {
    if let Err(refused) = session(&app, &headers) {
        return refused.into_response();
    }
    if !is_stem(&item) {
        return refuse(StatusCode::NOT_FOUND, "No such photo.");
    }
    match app.queue.image(&item).await {
        Ok(Some((bytes, content_type))) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "private, max-age=300".to_string()),
            ],
            bytes,
        )
            .into_response(),
        Ok(None) => refuse(StatusCode::NOT_FOUND, "This photo is gone."),
        Err(error) => refuse(
            StatusCode::BAD_GATEWAY,
            &format!("{error}; {}", error.hint()),
        ),
    }
}

#[derive(Debug, Deserialize)]
struct DecideForm {
    item: String,
    action: String,
    #[serde(default)]
    label: String,
}

async fn decide<S: ReviewStore + 'static>(
    State(app): State<Arc<App<S>>>,
    headers: HeaderMap,
    Form(form): Form<DecideForm>,
) -> Response {
    let id = match session(&app, &headers) {
        Ok(id) => id,
        Err(refused) => return refused.into_response(),
    };
    let flash = |ok: bool, text: String| {
        app.with_session(&id, |session| session.flash = Some(Flash { ok, text }));
        see_other("/", None)
    };
    if !is_stem(&form.item) {
        return flash(false, "That is not a photo of this queue.".into());
    }
    let label = form.label.trim().to_string();
    let decision = match form.action.as_str() {
        "species" => Decision::Species(label),
        "subgroup" => Decision::Subgroup(label),
        "reject" => Decision::Reject,
        "skip" => {
            app.with_session(&id, |session| session.skipped.insert(form.item.clone()));
            return flash(
                true,
                format!("Skipped {}: it stays in the queue.", form.item),
            );
        }
        other => return flash(false, format!("`{other}` is not a decision.")),
    };
    let now = (app.clock)();
    match app
        .queue
        .decide(&app.reviewer(&id), &form.item, &decision, now)
        .await
    {
        Ok(decided) => {
            app.with_session(&id, |session| session.reviewed += 1);
            let mut text = match (decided.verdict, &decision) {
                (Verdict::Rejected, _) => {
                    format!("Rejected {}: kept out of the training data.", form.item)
                }
                (verdict, Decision::Species(label) | Decision::Subgroup(label)) => format!(
                    "{} {label}: copied to {}.",
                    if verdict == Verdict::Agreed {
                        "Confirmed"
                    } else {
                        "Corrected to"
                    },
                    decided.copied_to.join(" and ")
                ),
                (_, Decision::Reject) => String::new(),
            };
            if let Some(problem) = decided.log_problem {
                text.push_str(&format!(
                    " The review log was not written ({problem}); the dashboard will not count it."
                ));
            }
            flash(true, text)
        }
        Err(error) => flash(false, format!("{error}; {}", error.hint())),
    }
}
