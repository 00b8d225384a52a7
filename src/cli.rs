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
    /// Show what apply would change, stack by stack and resource by resource
    #[command(
        after_help = "Examples:\n  mlops-infra plan staging\n  mlops-infra plan prod --detailed-exitcode --output markdown > plan.md\n  mlops-infra plan staging --out staging.plan.json"
    )]
    Plan(PlanArgs),
    /// Apply an environment (or a saved plan) through change sets, in dependency order
    #[command(
        after_help = "Examples:\n  mlops-infra apply staging\n  mlops-infra apply prod --yes\n  mlops-infra apply staging.plan.json"
    )]
    Apply(ApplyArgs),
    /// Show each stack's status and last update
    #[command(after_help = "Example:\n  mlops-infra status staging")]
    Status(EnvironmentArgs),
    /// Print the stacks' outputs
    #[command(
        after_help = "Example:\n  mlops-infra outputs staging --output json | jq '.storage.DataBucketName'"
    )]
    Outputs(OutputsArgs),
    /// Delete an environment's stacks in reverse dependency order
    #[command(after_help = "Example:\n  mlops-infra destroy dev --yes")]
    Destroy(DestroyArgs),
}

#[derive(Debug, Args)]
pub struct EnvironmentArgs {
    /// Environment name: `environments/<ENV>.yaml`
    pub environment: String,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Environment name: `environments/<ENV>.yaml`
    pub environment: String,
    /// Plan format
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub output: PlanFormat,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Plan only these stacks (ids such as `storage` or `endpoint-plants`)
    #[arg(long = "stack", value_name = "ID")]
    pub stacks: Vec<String>,
    /// Save the plan, to apply exactly it later with `apply FILE`
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Environment name, or a plan saved by `plan --out`
    pub target: String,
    /// Do not ask for confirmation (protected environments ask otherwise)
    #[arg(long)]
    pub yes: bool,
    /// Allow replacing or deleting this data-bearing resource (logical id); repeatable
    #[arg(long = "allow-replace", value_name = "LOGICAL_ID")]
    pub allow_replace: Vec<String>,
    /// Apply only these stacks (ids)
    #[arg(long = "stack", value_name = "ID")]
    pub stacks: Vec<String>,
    /// Stacks applied at once
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
}

#[derive(Debug, Args)]
pub struct OutputsArgs {
    /// Environment name: `environments/<ENV>.yaml`
    pub environment: String,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Environment name: `environments/<ENV>.yaml`
    pub environment: String,
    /// Do not ask for confirmation
    #[arg(long)]
    pub yes: bool,
    /// Destroy a protected environment
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Environment name: `environments/<ENV>.yaml`
    pub environment: String,
    /// Output folder (default: `build/<ENV>`)
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
    /// Environment name: `environments/<ENV>.yaml`
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
