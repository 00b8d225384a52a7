//! Entry point: parses arguments, wires stdout/stderr and colour, maps results to exit codes.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use mlops_infra::cli::{Cli, ColorChoice, Command};
use mlops_infra::commands::{self, Output};
use mlops_infra::view::Palette;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = match cli.global.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
                && std::io::stderr().is_terminal()
        }
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut output = Output {
        out: &mut stdout.lock(),
        err: &mut stderr.lock(),
        palette: Palette::new(color),
        verbose: cli.global.verbose,
    };
    let project_dir = cli.global.project_dir.as_path();
    let status = match &cli.command {
        Command::Render(args) => commands::render(project_dir, args, &mut output),
        Command::Validate(args) => commands::validate(project_dir, args, &mut output),
    };
    ExitCode::from(status.code() as u8)
}
