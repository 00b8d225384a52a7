//! The review queue and page on the in-memory store: claims keep reviewers apart, decisions
//! copy the photo into the raw data under its label with an audit record and a review-log
//! line, and every bad input leaves the bucket exactly as it was.

use std::collections::BTreeSet;
use std::sync::Arc;

use mlops_infra::aws::fake_review::FakeReviewStore;
use mlops_infra::aws::review_store::ReviewStore;
use mlops_infra::review::queue::{Decision, Next, Queue, ReviewError, Reviewer, Settings, Verdict};
use mlops_infra::review::server::App;

const BUCKET: &str = "data";
const NOW: u64 = 1_796_108_400; // 2026-12-01T07:00:00Z
const PLANTS: &str =
    "arn:aws:sagemaker:eu-west-1:222222222222:model-package/mlops-images-staging-plants/3";
const TREES: &str =
    "arn:aws:sagemaker:eu-west-1:222222222222:model-package/mlops-images-staging-trees/2";
const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0photo";

fn settings() -> Settings {
    Settings {
        bucket: BUCKET.into(),
        parent: "plants".into(),
        raw_prefix: "raw/".into(),
        claim_minutes: 15,
        environment: "staging".into(),
        log_group: "/mlops-images/staging/review".into(),
        namespace: "mlops-images/staging/review".into(),
        only_child: None,
    }
}

fn record(stem: &str) -> serde_json::Value {
    serde_json::json!({
        "version": 1, "request_id": stem, "received_at": "2026-12-01T06:59:00Z", "environment": "staging",
        "image": {"key": format!("review/pending/plants/{stem}.jpg"), "content_type": "image/jpeg", "bytes": JPEG.len(), "sha256": "00"},
        "parent": {"name": "trees", "confidence": 0.55, "model": "plants", "package_version": "3", "package": PLANTS,
                   "top5": [{"name": "trees", "confidence": 0.55}, {"name": "flowers", "confidence": 0.45}]},
        "child": {"name": "oak", "confidence": 0.41, "model": "trees", "package_version": "2", "package": TREES,
                  "top5": [{"name": "oak", "confidence": 0.41}, {"name": "beech", "confidence": 0.39}, {"name": "<b>elm</b>", "confidence": 0.2}]},
        "threshold": 0.6
    })
}

/// A store holding `stems` as pending items, and both models' class names.
fn store(stems: &[&str]) -> FakeReviewStore {
    let store = FakeReviewStore::new("arn:aws:iam::222222222222:user/ana");
    for stem in stems {
        store.insert(BUCKET, &format!("review/pending/plants/{stem}.jpg"), JPEG);
        store.insert(
            BUCKET,
            &format!("review/pending/plants/{stem}.json"),
            record(stem).to_string().as_bytes(),
        );
    }
    store.set_classes(PLANTS, "s3://artifacts/plants/classes.json");
    store.set_classes(TREES, "s3://artifacts/trees/classes.json");
    store.insert(
        "artifacts",
        "plants/classes.json",
        br#"["flowers","grasses","trees"]"#,
    );
    store.insert(
        "artifacts",
        "trees/classes.json",
        br#"["beech","oak","<b>elm</b>"]"#,
    );
    store
}

fn reviewer(session: &str) -> Reviewer {
    Reviewer {
        arn: format!("arn:aws:iam::222222222222:user/{session}"),
        session: session.into(),
    }
}

async fn next_stem(queue: &Queue<FakeReviewStore>, who: &Reviewer, now: u64) -> Option<String> {
    match queue.next(who, &BTreeSet::new(), now).await.expect("next") {
        Some(Next::Ready(item)) => Some(item.stem),
        Some(Next::Broken { stem, .. }) => Some(stem),
        None => None,
    }
}

fn run<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

#[test]
fn two_reviewers_never_hold_the_same_photo_until_a_claim_lapses() {
    run(async {
        let queue = Queue::new(store(&["a", "b"]), settings());
        let (ana, ben, cy) = (reviewer("ana"), reviewer("ben"), reviewer("cy"));
        assert_eq!(next_stem(&queue, &ana, NOW).await.as_deref(), Some("a"));
        assert_eq!(next_stem(&queue, &ben, NOW).await.as_deref(), Some("b"));
        assert_eq!(next_stem(&queue, &cy, NOW).await, None, "both are held");
        // The same session gets its own photo back (a reload).
        assert_eq!(
            next_stem(&queue, &ana, NOW + 60).await.as_deref(),
            Some("a")
        );
        // Fifteen minutes later ana's claim has lapsed and cy may take it over.
        assert_eq!(
            next_stem(&queue, &cy, NOW + 15 * 60).await.as_deref(),
            Some("a")
        );
        let error = queue
            .decide(&ana, "a", &Decision::Reject, NOW + 16 * 60)
            .await
            .expect_err("ana no longer holds it");
        assert!(matches!(error, ReviewError::NotClaimed { .. }), "{error}");
    });
}

#[test]
fn confirming_copies_the_photo_for_both_models_writes_the_audit_and_empties_the_item() {
    run(async {
        let queue = Queue::new(store(&["a"]), settings());
        let ana = reviewer("ana");
        next_stem(&queue, &ana, NOW).await;
        let decided = queue
            .decide(&ana, "a", &Decision::Species("oak".into()), NOW + 5)
            .await
            .expect("decided");
        assert_eq!(decided.verdict, Verdict::Agreed);
        assert_eq!(
            decided.copied_to,
            ["raw/trees/oak/a.jpg", "raw/plants/trees/a.jpg"]
        );
        assert_eq!(decided.log_problem, None);
        let store = &queue.store;
        assert_eq!(
            store.keys(BUCKET),
            [
                "raw/plants/trees/a.jpg",
                "raw/trees/oak/a.jpg",
                "review/done/plants/a.json"
            ]
        );
        assert_eq!(
            store.body(BUCKET, "raw/trees/oak/a.jpg").as_deref(),
            Some(JPEG)
        );
        let audit: serde_json::Value = serde_json::from_slice(
            &store
                .body(BUCKET, "review/done/plants/a.json")
                .expect("audit"),
        )
        .expect("json");
        assert_eq!(audit["decision"]["verdict"], "agreed");
        assert_eq!(audit["decision"]["label"], "oak");
        assert_eq!(audit["reviewer"], "arn:aws:iam::222222222222:user/ana");
        assert_eq!(audit["decided_at"], "2026-12-01T07:00:05Z");
        assert_eq!(audit["record"]["child"]["name"], "oak");
        let lines = store.log_lines();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].0, "/mlops-images/staging/review");
        let line: serde_json::Value = serde_json::from_str(&lines[0].2).expect("emf");
        assert_eq!(
            (
                line["Reviewed"].as_u64(),
                line["Agreed"].as_u64(),
                line["Corrected"].as_u64()
            ),
            (Some(1), Some(1), Some(0))
        );
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "mlops-images/staging/review"
        );
    });
}

#[test]
fn corrections_and_rejections_land_where_data_quality_reads_them() {
    run(async {
        let queue = Queue::new(store(&["a", "b", "c"]), settings());
        let ana = reviewer("ana");
        for (stem, decision) in [
            ("a", Decision::Species("beech".into())),
            ("b", Decision::Subgroup("flowers".into())),
            ("c", Decision::Reject),
        ] {
            assert_eq!(next_stem(&queue, &ana, NOW).await.as_deref(), Some(stem));
            let decided = queue
                .decide(&ana, stem, &decision, NOW)
                .await
                .expect("decided");
            let expected = match stem {
                "a" => (
                    Verdict::Corrected,
                    vec!["raw/trees/beech/a.jpg", "raw/plants/trees/a.jpg"],
                ),
                "b" => (Verdict::Corrected, vec!["raw/plants/flowers/b.jpg"]),
                _ => (Verdict::Rejected, vec![]),
            };
            assert_eq!(
                (
                    decided.verdict,
                    decided
                        .copied_to
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                ),
                expected
            );
        }
        let keys = queue.store.keys(BUCKET);
        assert!(
            keys.iter().all(|key| !key.starts_with("review/pending/")),
            "{keys:?}"
        );
        assert_eq!(
            keys.iter()
                .filter(|key| key.starts_with("review/done/"))
                .count(),
            3
        );
    });
}

/// Every key and body of the bucket, to show nothing changed.
fn snapshot(store: &FakeReviewStore) -> Vec<(String, Vec<u8>)> {
    store
        .keys(BUCKET)
        .into_iter()
        .map(|key| {
            let body = store.body(BUCKET, &key).unwrap_or_default();
            (key, body)
        })
        .filter(|(key, _)| !key.starts_with("review/claims/"))
        .collect()
}

#[test]
fn bad_input_changes_nothing_and_says_why() {
    run(async {
        // A label not among the model's classes.
        let queue = Queue::new(store(&["a"]), settings());
        let ana = reviewer("ana");
        next_stem(&queue, &ana, NOW).await;
        let before = snapshot(&queue.store);
        let error = queue
            .decide(&ana, "a", &Decision::Species("baobab".into()), NOW)
            .await
            .expect_err("unknown label");
        assert_eq!(
            error.to_string(),
            "`baobab` is not a class of model `trees`"
        );
        assert_eq!(
            error.hint(),
            "nothing was changed; pick a class from the list"
        );
        assert_eq!(snapshot(&queue.store), before);

        // The image is gone: shown as broken, and deciding refuses.
        let store = store(&["gone"]);
        store.set_classes("x", "s3://x/y");
        let queue = Queue::new(store, settings());
        queue.store.fail_writes_of("never");
        // Remove the image only.
        let image = "review/pending/plants/gone.jpg";
        mlops_infra::aws::review_store::ReviewStore::delete(&queue.store, BUCKET, image)
            .await
            .expect("delete");
        let before = snapshot(&queue.store);
        match queue.next(&ana, &BTreeSet::new(), NOW).await.expect("next") {
            Some(Next::Broken { stem, problem }) => {
                assert_eq!(stem, "gone");
                assert_eq!(problem, format!("its image {image} is gone"));
            }
            other => panic!("expected a broken item, got {other:?}"),
        }
        let error = queue
            .decide(&ana, "gone", &Decision::Reject, NOW)
            .await
            .expect_err("gone");
        assert!(error.to_string().contains("is gone"), "{error}");
        assert_eq!(snapshot(&queue.store), before);

        // A record that does not parse.
        let store = store_with_record("broken", b"{\"version\": 1, ");
        let queue = Queue::new(store, settings());
        let before = snapshot(&queue.store);
        match queue.next(&ana, &BTreeSet::new(), NOW).await.expect("next") {
            Some(Next::Broken { problem, .. }) => assert!(
                problem.starts_with("its record review/pending/plants/broken.json does not parse"),
                "{problem}"
            ),
            other => panic!("expected a broken item, got {other:?}"),
        }
        assert_eq!(snapshot(&queue.store), before);

        // The bucket unreachable: an error saying so, nothing changed.
        let queue = Queue::new(store_for_outage(), settings());
        queue.store.set_unreachable(true);
        let error = queue
            .next(&ana, &BTreeSet::new(), NOW)
            .await
            .expect_err("unreachable");
        assert!(
            error.to_string().starts_with(
                "cannot list the photos waiting under s3://data/review/pending/plants/"
            ),
            "{error}"
        );
        assert_eq!(
            error.hint(),
            "nothing was changed; check the network and try again"
        );
    });
}

fn store_with_record(stem: &str, body: &[u8]) -> FakeReviewStore {
    let store = store(&[]);
    store.insert(BUCKET, &format!("review/pending/plants/{stem}.json"), body);
    store
}

fn store_for_outage() -> FakeReviewStore {
    store(&["a"])
}

#[test]
fn a_failed_copy_leaves_the_item_pending_and_a_retry_completes_it() {
    run(async {
        let queue = Queue::new(store(&["a"]), settings());
        let ana = reviewer("ana");
        next_stem(&queue, &ana, NOW).await;
        queue.store.fail_writes_of("raw/plants/trees/a.jpg");
        let error = queue
            .decide(&ana, "a", &Decision::Species("oak".into()), NOW)
            .await
            .expect_err("denied");
        assert!(
            error
                .to_string()
                .starts_with("cannot copy the photo to raw/plants/trees/a.jpg"),
            "{error}"
        );
        let keys = queue.store.keys(BUCKET);
        assert!(keys.contains(&"review/pending/plants/a.json".to_string()));
        assert!(keys.contains(&"review/pending/plants/a.jpg".to_string()));
        assert!(!keys.iter().any(|key| key.starts_with("review/done/")));
        // Once the copy can be made, the same decision completes.
        queue.store.allow_writes_of("raw/plants/trees/a.jpg");
        let decided = queue
            .decide(&ana, "a", &Decision::Species("oak".into()), NOW)
            .await
            .expect("retried");
        assert_eq!(decided.copied_to.len(), 2);
        assert!(
            queue
                .store
                .body(BUCKET, "review/done/plants/a.json")
                .is_some()
        );
    });
}

#[test]
fn review_for_a_child_shows_only_the_photos_routed_to_it() {
    run(async {
        let store = store(&["a"]);
        let mut other = record("b");
        other["child"]["model"] = "flowers".into();
        store.insert(BUCKET, "review/pending/plants/b.jpg", JPEG);
        store.insert(
            BUCKET,
            "review/pending/plants/b.json",
            other.to_string().as_bytes(),
        );
        let mut only_flowers = settings();
        only_flowers.only_child = Some("flowers".into());
        let queue = Queue::new(store, only_flowers);
        let ana = reviewer("ana");
        assert_eq!(next_stem(&queue, &ana, NOW).await.as_deref(), Some("b"));
    });
}

// --- the page, over HTTP ---------------------------------------------------------------------

struct Server {
    port: u16,
    token: String,
}

/// Serves `app` on a free port in a background thread's runtime.
fn serve(store: FakeReviewStore) -> Server {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let token = "t0k3n".to_string();
    let app = Arc::new(App::new(
        Queue::new(store, settings()),
        token.clone(),
        port,
        "arn:aws:iam::222222222222:user/ana".into(),
        Box::new(|| NOW),
    ));
    std::thread::spawn(move || {
        run(async move {
            listener.set_nonblocking(true).expect("nonblocking");
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app.router()).await.expect("serve");
        })
    });
    Server { port, token }
}

/// One HTTP/1.1 request; the answer's status line, headers and body.
fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(name, _)| *name == "Host") {
        text.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream.write_all(text.as_bytes()).expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read");
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head");
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let status = head[9..12].parse().expect("status");
    (status, head, answer[split + 4..].to_vec())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// Logs in with the token; the session cookie.
fn login(server: &Server) -> String {
    let (status, head, _) = request(
        server.port,
        "GET",
        &format!("/?token={}", server.token),
        &[],
        "",
    );
    assert_eq!(status, 303);
    let cookie = header(&head, "set-cookie").expect("cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie.split(';').next().expect("pair").to_string()
}

/// A chunked body, joined (hyper chunks HTML answers of unknown length).
fn body_text(head: &str, body: &[u8]) -> String {
    if header(head, "transfer-encoding") != Some("chunked") {
        return String::from_utf8_lossy(body).into_owned();
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size");
        let size = usize::from_str_radix(
            std::str::from_utf8(&rest[..line_end]).expect("utf8").trim(),
            16,
        )
        .expect("hex");
        if size == 0 {
            break;
        }
        out.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
        rest = &rest[line_end + 4 + size..];
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn the_page_needs_the_token_and_this_host() {
    let server = serve(store(&["a"]));
    let (status, _, body) = request(server.port, "GET", "/", &[], "");
    assert_eq!(status, 403);
    assert!(
        String::from_utf8_lossy(&body).contains("Open the address `mlops-infra review` printed")
    );
    let (status, _, _) = request(server.port, "GET", "/?token=wrong", &[], "");
    assert_eq!(status, 403);
    let cookie = login(&server);
    let (status, _, _) = request(
        server.port,
        "GET",
        "/",
        &[("Cookie", &cookie), ("Host", "evil.example:80")],
        "",
    );
    assert_eq!(status, 403, "another host name (DNS rebinding) is refused");
    let (status, _, _) = request(server.port, "GET", "/image/a", &[], "");
    assert_eq!(status, 403, "photos need a session too");
}

#[test]
fn the_page_shows_the_photo_and_a_decision_moves_it() {
    let server = serve(store(&["a", "b"]));
    let cookie = login(&server);
    let (status, head, body) = request(server.port, "GET", "/", &[("Cookie", &cookie)], "");
    assert_eq!(status, 200);
    let page = body_text(&head, &body);
    insta::assert_snapshot!("review_page_item", page);
    let (status, head, image) = request(server.port, "GET", "/image/a", &[("Cookie", &cookie)], "");
    assert_eq!(
        (status, header(&head, "content-type")),
        (200, Some("image/jpeg"))
    );
    assert_eq!(image, JPEG);
    let (status, head, _) = request(
        server.port,
        "POST",
        "/decide",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        "item=a&action=species&label=beech",
    );
    assert_eq!((status, header(&head, "location")), (303, Some("/")));
    let (_, head, body) = request(server.port, "GET", "/", &[("Cookie", &cookie)], "");
    let page = body_text(&head, &body);
    assert!(
        page.contains(
            "Corrected to beech: copied to raw/trees/beech/a.jpg and raw/plants/trees/a.jpg."
        ),
        "{page}"
    );
    assert!(page.contains("1 waiting · 1 reviewed by you"), "{page}");
    assert!(page.contains("data-item=\"b\""), "the next photo is shown");
    let (_, head, body) = request(
        server.port,
        "POST",
        "/decide",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        "item=b&action=species&label=baobab",
    );
    assert_eq!(body_text(&head, &body), "");
    let (_, head, body) = request(server.port, "GET", "/", &[("Cookie", &cookie)], "");
    let page = body_text(&head, &body);
    assert!(page.contains("`baobab` is not a class of model `trees`; nothing was changed; pick a class from the list"), "{page}");
}

#[test]
fn the_broken_and_empty_pages_say_what_to_do() {
    let server = serve(store_with_record("broken", b"not json"));
    let cookie = login(&server);
    let (_, head, body) = request(server.port, "GET", "/", &[("Cookie", &cookie)], "");
    insta::assert_snapshot!("review_page_broken", body_text(&head, &body));
    request(
        server.port,
        "POST",
        "/decide",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        "item=broken&action=skip",
    );
    let (_, head, body) = request(server.port, "GET", "/", &[("Cookie", &cookie)], "");
    insta::assert_snapshot!("review_page_empty", body_text(&head, &body));
}

#[test]
fn the_fake_store_refuses_a_second_conditional_create() {
    run(async {
        let store = store(&[]);
        let put = |condition| store.put(BUCKET, "k", b"1".to_vec(), "text/plain", condition);
        put(Some(mlops_infra::aws::review_store::Condition::IfAbsent))
            .await
            .expect("first");
        let second = put(Some(mlops_infra::aws::review_store::Condition::IfAbsent)).await;
        assert!(matches!(
            second,
            Err(mlops_infra::aws::review_store::WriteError::Conflict)
        ));
    });
}

#[test]
fn the_queue_to_review_is_the_parent_or_a_child_of_it() {
    let environment =
        mlops_infra::config::load(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), "staging")
            .expect("staging");
    use mlops_infra::commands::review::settings;
    let plants = settings(&environment, None).expect("the only parent");
    assert_eq!(
        (plants.parent.as_str(), plants.only_child),
        ("plants", None)
    );
    assert_eq!(plants.log_group, "/mlops-images/staging/review");
    assert_eq!(plants.bucket, environment.storage.data_bucket_name);
    let trees = settings(&environment, Some("trees")).expect("a child");
    assert_eq!(
        (trees.parent.as_str(), trees.only_child.as_deref()),
        ("plants", Some("trees"))
    );
    let error = settings(&environment, Some("palms")).expect_err("no such model");
    assert_eq!(error.to_string(), "`palms` is not a model of `staging`");
}

#[test]
fn an_unknown_model_names_the_models_there_are() {
    let environment =
        mlops_infra::config::load(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), "staging")
            .expect("staging");
    let error = mlops_infra::commands::review::settings(&environment, Some("palms"))
        .expect_err("no such model");
    assert_eq!(
        error.hint(),
        Some("models: `plants`, `trees`, `flowers`, `grasses`")
    );
}
