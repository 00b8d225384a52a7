//! Command-line definitions (clap) and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "mlops-infra",
    version,
    about = "Render, validate and deploy the SageMaker MLOps platform's CloudFormation stacks",
    after_help = "Examples:\n  mlops-infra validate staging\n  mlops-infra render prod --out build/prod\n  mlops-infra -C path/to/project validate dev"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Project folder holding environments/ and templates/
    #[arg(
        short = 'C',
        long = "project-dir",
        global = true,
        default_value = ".",
        value_name = "DIR"
    )]
    pub project_dir: PathBuf,
    /// When to colour output; NO_COLOR in the environment turns it off under `auto`
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Say more about what is happening (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render every stack of an environment to CloudFormation templates
    #[command(
        after_help = "Example:\n  mlops-infra render staging --out build/staging --format json"
    )]
    Render(RenderArgs),
    /// Render an environment and run the offline checks on every stack
    #[command(
        after_help = "Example:\n  mlops-infra validate staging\n  mlops-infra validate prod --output json | jq '.diagnostics'"
    )]
    Validate(ValidateArgs),
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Environment name: environments/<ENV>.yaml
    pub environment: String,
    /// Output folder [default: build/<ENV>]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Template format to write
    #[arg(long, value_enum, default_value_t = TemplateFormat::Yaml)]
    pub format: TemplateFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TemplateFormat {
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Environment name: environments/<ENV>.yaml
    pub environment: String,
    /// Report format
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}
