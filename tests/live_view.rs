//! The live apply view's rows at the widths people use: never wider than the terminal (a
//! wrapped row breaks the in-place redraw), the least useful column cut first.

use mlops_infra::commands::deploy::{LIVE_MIN_WIDTH, live_row};

const ROWS: [(&str, &str, u64, &str); 4] = [
    (
        "mlops-images-staging-monitoring",
        "done (CREATE_COMPLETE)",
        12,
        "mlops-images-staging-monitoring CREATE_COMPLETE",
    ),
    (
        "mlops-images-staging-pipeline-grasses",
        "UPDATE_IN_PROGRESS",
        7,
        "Pipeline UPDATE_IN_PROGRESS",
    ),
    (
        "mlops-images-staging-endpoint-flowers",
        "FAILED (UPDATE_ROLLBACK_COMPLETE), first failure at EndpointConfig: Resource handler returned message",
        95,
        "EndpointConfig UPDATE_FAILED",
    ),
    ("mlops-images-staging-iam", "working", 3, ""),
];

fn view(width: usize) -> String {
    ROWS.iter()
        .map(|(stack, state, seconds, latest)| live_row(stack, state, *seconds, latest, width))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn rows_fit_80_120_and_200_columns() {
    for width in [LIVE_MIN_WIDTH, 80, 120, 200] {
        for row in view(width).lines() {
            assert!(
                row.chars().count() < width,
                "{width} columns: {} chars: {row}",
                row.chars().count()
            );
        }
    }
    // Wide terminals show everything; narrow ones keep name, state and time.
    assert!(view(200).contains("Pipeline UPDATE_IN_PROGRESS"));
    assert!(!view(80).contains("Pipeline UPDATE_IN_PROGRESS"));
    assert!(view(80).contains("mlops-images-staging-pipeline-grasses"));
    assert!(view(LIVE_MIN_WIDTH).contains("  95s"));
}

#[test]
fn the_view_at_three_widths() {
    insta::assert_snapshot!("live_view_80", view(80));
    insta::assert_snapshot!("live_view_120", view(120));
    insta::assert_snapshot!("live_view_200", view(200));
}
