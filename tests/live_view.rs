//! The live apply view's rows at the widths people use: never wider than the terminal (a
//! wrapped row breaks the in-place redraw), the least useful column cut first; and a whole
//! apply's output played on a terminal emulator at 80, 120 and 200 columns.

mod common;

use common::capture::capture_live;
use mlops_infra::aws::fake::FakeCloudFormation;
use mlops_infra::aws::fake_platform::FakePlatform;
use mlops_infra::commands::deploy::{
    self, LIVE_MIN_WIDTH, LiveState, live_more_row, live_row, live_selection,
};
use mlops_infra::error::ExitStatus;

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
        .map(|(stack, state, seconds, latest)| {
            live_row(stack, state, *seconds, latest, width, false)
        })
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

/// Applies staging to the in-memory CloudFormation as in a colour terminal `width()` columns
/// wide and `height()` lines high, and plays what it wrote on a terminal emulator `rows` lines
/// high that keeps `scrollback` lines scrolled off its top.
async fn played(
    width: fn() -> Option<usize>,
    height: fn() -> Option<usize>,
    rows: u16,
    scrollback: usize,
) -> vt100::Parser {
    let fake = FakeCloudFormation::new();
    let platform = FakePlatform::new("222222222222");
    let args = common::apply_args("staging");
    let run = capture_live("live", width, height, async |output, context| {
        deploy::apply(&fake, &platform, &common::repo(), &args, output, context).await
    })
    .await;
    assert_eq!(run.status, ExitStatus::Success, "{}", run.stderr);
    let columns = u16::try_from(width().expect("a width")).expect("columns");
    let mut terminal = vt100::Parser::new(rows, columns, scrollback);
    // A terminal moves to the next line's start on a newline (the tty's onlcr).
    terminal.process(run.stderr.replace('\n', "\r\n").as_bytes());
    terminal
}

/// The live view's rows on the screen: one per stack, indented by two spaces.
fn live_rows(terminal: &vt100::Parser) -> Vec<String> {
    terminal
        .screen()
        .contents()
        .lines()
        .filter(|line| line.starts_with("  mlops-images-staging-"))
        .map(seconds_as_n)
        .collect()
}

/// A live row with its elapsed seconds as `Ns`: a slower machine reads the same.
fn seconds_as_n(line: &str) -> String {
    line.split(' ')
        .map(|word| match word.strip_suffix('s') {
            Some(number) if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) => {
                "Ns"
            }
            _ => word,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

async fn check_screen(width: fn() -> Option<usize>, name: &str) {
    // 400 lines: nothing scrolls away.
    let terminal = played(width, || None, 400, 0).await;
    let screen = terminal.screen();
    let (rows, columns) = screen.size();
    // The live rows are redrawn in place: none may wrap (plan text above may).
    for row in 0..rows {
        let text = screen.contents_between(row, 0, row, columns);
        if text.starts_with("  mlops-images-staging-") {
            assert!(
                !screen.row_wrapped(row),
                "{text} wrapped at {columns} columns"
            );
        }
    }
    let live = live_rows(&terminal);
    assert_eq!(
        live.len(),
        15,
        "one row per stack, no duplicates left by a redraw:\n{}",
        screen.contents()
    );
    for row in &live {
        assert!(row.chars().count() < usize::from(columns), "{row}");
    }
    // The finished stacks' state is green.
    let row = (0..rows)
        .find(|&row| {
            screen
                .contents_between(row, 0, row, columns)
                .starts_with("  mlops-images-staging-iam")
        })
        .expect("the iam row");
    let state_column = live
        .iter()
        .find(|line| line.starts_with("  mlops-images-staging-iam"))
        .and_then(|line| line.find("done"))
        .expect("iam done");
    let cell = screen
        .cell(row, u16::try_from(state_column).expect("column"))
        .expect("cell");
    assert_eq!(cell.fgcolor(), vt100::Color::Idx(2), "green");
    insta::assert_snapshot!(name, live.join("\n"));
}

#[tokio::test(flavor = "current_thread")]
async fn an_apply_on_a_terminal_80_columns_wide() {
    check_screen(|| Some(80), "screen_80").await;
}

#[tokio::test(flavor = "current_thread")]
async fn an_apply_on_a_terminal_120_columns_wide() {
    check_screen(|| Some(120), "screen_120").await;
}

#[tokio::test(flavor = "current_thread")]
async fn an_apply_on_a_terminal_200_columns_wide() {
    check_screen(|| Some(200), "screen_200").await;
}

const UNDER_WAY: LiveState = LiveState {
    finished: None,
    failed: false,
};

fn finished(order: u64) -> LiveState {
    LiveState {
        finished: Some(order),
        failed: false,
    }
}

#[test]
fn a_view_taller_than_the_terminal_keeps_failures_then_stacks_under_way_then_the_latest_done() {
    let failed = LiveState {
        finished: Some(0),
        failed: true,
    };
    // Started in this order: 0 failed first, 1 and 4 still under way, 2, 3, 5 finished 1, 3, 2.
    let stacks = [
        failed,
        UNDER_WAY,
        finished(1),
        finished(3),
        UNDER_WAY,
        finished(2),
    ];
    assert_eq!(
        live_selection(&stacks, 6),
        (vec![0, 1, 2, 3, 4, 5], 0, 0),
        "all fit"
    );
    // Four lines: three stacks and the count of the rest, in the order they started.
    assert_eq!(live_selection(&stacks, 4), (vec![0, 1, 4], 3, 0));
    assert_eq!(live_selection(&stacks, 5), (vec![0, 1, 3, 4], 2, 0));
    // Fewer lines than stacks under way: those that started first.
    assert_eq!(live_selection(&stacks, 2), (vec![0], 3, 2));
    assert_eq!(
        live_more_row(3, 2, 80),
        "  … 5 more: 3 finished, 2 under way"
    );
    assert_eq!(live_more_row(3, 0, 80), "  … 3 more: 3 finished");
    assert_eq!(live_more_row(3, 2, 20), "  … 5 more: 3 fini…");
}

/// Every line the terminal showed, the ones scrolled off its top first.
fn history(terminal: &mut vt100::Parser) -> Vec<String> {
    let (rows, columns) = terminal.screen().size();
    terminal.screen_mut().set_scrollback(usize::MAX);
    let back = terminal.screen().scrollback();
    let mut lines = Vec::new();
    for offset in (1..=back).rev() {
        terminal.screen_mut().set_scrollback(offset);
        lines.push(terminal.screen().contents_between(0, 0, 0, columns));
    }
    terminal.screen_mut().set_scrollback(0);
    for row in 0..rows {
        lines.push(terminal.screen().contents_between(row, 0, row, columns));
    }
    lines
}

/// A terminal lower than the view: the view keeps within it, so redraws stay in place instead
/// of drawing themselves again below (the cursor cannot move above the screen's top).
#[tokio::test(flavor = "current_thread")]
async fn an_apply_on_a_terminal_12_lines_high() {
    let mut terminal = played(|| Some(100), || Some(12), 12, 10_000).await;
    let lines = history(&mut terminal);
    let live: Vec<&String> = lines
        .iter()
        .filter(|line| line.starts_with("  mlops-images-staging-") || line.starts_with("  … "))
        .collect();
    // The final view: ten stacks and the count of the other five, each line once in the whole
    // history (a view taller than the screen leaves copies of its top lines above it).
    assert_eq!(live.len(), 11, "{}", lines.join("\n"));
    let mut names: Vec<&str> = live
        .iter()
        .map(|line| line.split_whitespace().next().expect("a name"))
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 11, "a line drawn twice:\n{}", lines.join("\n"));
    assert_eq!(live[10].trim(), "… 5 more: 5 finished");
    let view: Vec<String> = live.iter().map(|line| seconds_as_n(line)).collect();
    insta::assert_snapshot!("screen_100x12", view.join("\n"));
}
