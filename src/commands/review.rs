//! `review`: serves the review page of a parent model's low-confidence photos on 127.0.0.1,
//! acting with the reviewer's own AWS credentials, until interrupted.

use std::path::Path;
use std::sync::Arc;

use super::registry::guard;
use super::{Output, load_environment};
use crate::apply::Interrupt;
use crate::aws::platform::Platform;
use crate::aws::review_store::ReviewStore;
use crate::cli::ReviewArgs;
use crate::config::{Environment, Model};
use crate::error::{Error, ExitStatus};
use crate::review::queue::{Queue, Settings};
use crate::review::server::{App, random_hex};

/// The CloudWatch Logs group of the review log (created by the monitoring stack).
pub fn log_group(environment: &Environment) -> String {
    format!("/{}/{}/review", environment.project, environment.name)
}

/// The queue to review: `--model` names a parent (its queue) or a child (its parent's queue,
/// only the photos routed to it); without it, the environment's only parent.
pub fn settings(environment: &Environment, model: Option<&str>) -> Result<Settings, Error> {
    let parents: Vec<&Model> = environment
        .models
        .iter()
        .filter(|model| !model.routes.is_empty())
        .collect();
    let names = || {
        environment
            .models
            .iter()
            .map(|model| format!("`{}`", model.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (parent, only_child) = match model {
        Some(name) => match environment.model(name) {
            Some(found) if !found.routes.is_empty() => (found, None),
            Some(found) => match found.parent.as_deref().and_then(|p| environment.model(p)) {
                Some(parent) => (parent, Some(found.name.clone())),
                None => {
                    return Err(Error::Usage {
                        message: format!(
                            "model `{name}` has no router in front of it, so no photos to review"
                        ),
                        hint: Some(
                            "review a parent model (with `routes`) or one of its children".into(),
                        ),
                    });
                }
            },
            None => {
                return Err(Error::Usage {
                    message: format!("`{name}` is not a model of `{}`", environment.name),
                    hint: Some(format!("models: {}", names())),
                });
            }
        },
        None => match parents.as_slice() {
            [only] => (*only, None),
            [] => {
                return Err(Error::Usage {
                    message: format!(
                        "`{}` has no parent model, so no router keeps photos for review",
                        environment.name
                    ),
                    hint: Some("give a model `routes` and children naming it as `parent`".into()),
                });
            }
            _ => {
                return Err(Error::Usage {
                    message: format!("`{}` has several parent models", environment.name),
                    hint: Some(format!("choose one with --model: {}", names())),
                });
            }
        },
    };
    Ok(Settings {
        bucket: environment.storage.data_bucket_name.clone(),
        parent: parent.name.clone(),
        raw_prefix: environment.pipeline.raw_prefix.clone(),
        claim_minutes: environment.review.claim_minutes,
        environment: environment.name.clone(),
        log_group: log_group(environment),
        namespace: format!("{}/{}/review", environment.project, environment.name),
        only_child,
    })
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

/// Opens the address in the desktop's browser; false when there is none to open.
fn open_browser(url: &str) -> bool {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(target_os = "windows") {
        "explorer"
    } else {
        "xdg-open"
    };
    std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

pub async fn review<P: Platform, S: ReviewStore + Clone + 'static>(
    platform: &P,
    store: &S,
    project_dir: &Path,
    args: &ReviewArgs,
    output: &mut Output<'_>,
    interrupt: &Interrupt,
) -> ExitStatus {
    let environment = match load_environment(project_dir, &args.environment, output) {
        Ok(environment) => environment,
        Err(status) => return status,
    };
    let settings = match settings(&environment, args.model.as_deref()) {
        Ok(settings) => settings,
        Err(error) => return output.fail(&[error]),
    };
    if let Err(error) = guard(platform, &environment).await {
        return output.fail(&[error]);
    }
    let reviewer = match store.caller().await {
        Ok(arn) => arn,
        Err(error) => {
            return output.fail(&[super::deploy::aws_error(
                "cannot tell who is reviewing",
                error,
            )]);
        }
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await {
        Ok(listener) => listener,
        Err(source) => {
            return output.fail(&[Error::Usage {
                message: format!("cannot listen on 127.0.0.1:{}: {source}", args.port),
                hint: Some("choose another --port, or leave it out for a free one".into()),
            }]);
        }
    };
    let port = match listener.local_addr() {
        Ok(address) => address.port(),
        Err(source) => {
            return output.fail(&[Error::Usage {
                message: format!("cannot read the listening address: {source}"),
                hint: None,
            }]);
        }
    };
    let token = random_hex(24);
    if token.is_empty() {
        return output.fail(&[Error::Usage {
            message: "the system gave no randomness for the page's access token".into(),
            hint: None,
        }]);
    }
    let url = format!("http://127.0.0.1:{port}/?token={token}");
    let parent = settings.parent.clone();
    let app = Arc::new(App::new(
        Queue::new(store.clone(), settings),
        token,
        port,
        reviewer.clone(),
        Box::new(now),
    ));
    let _ = writeln!(
        output.out,
        "Reviewing `{parent}` on {} as {reviewer}\n{url}",
        environment.name
    );
    let _ = output.out.flush();
    if !args.no_browser && !open_browser(&url) {
        let _ = writeln!(output.err, "open the address above in a browser");
    }
    let _ = writeln!(output.err, "press Ctrl-C to stop");
    let serve = axum::serve(listener, app.router());
    let stopped = async {
        while !interrupt.is_raised() {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    tokio::select! {
        result = serve => match result {
            Ok(()) => ExitStatus::Success,
            Err(source) => output.fail(&[Error::Usage {
                message: format!("the review server stopped: {source}"),
                hint: None,
            }]),
        },
        () = stopped => ExitStatus::Success,
    }
}
