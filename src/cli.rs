//! Command-line definitions (clap) and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "mlops-infra",
    version,
    about = "Render, validate and deploy the SageMaker MLOps platform's CloudFormation stacks",
    after_help = "Examples:\n  mlops-infra validate staging\n  mlops-infra plan staging\n  mlops-infra apply staging --yes\n  mlops-infra approve staging trees\n  mlops-infra promote trees --from staging --to prod\n  mlops-infra -C path/to/project validate dev"
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
        value_name = "DIR",
        help_heading = "Global options"
    )]
    pub project_dir: PathBuf,
    /// When to colour output; NO_COLOR in the environment turns it off under `auto`
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = ColorChoice::Auto,
        help_heading = "Global options"
    )]
    pub color: ColorChoice,
    /// Say more about what is happening (repeat for more)
    #[arg(
        short,
        long,
        global = true,
        action = clap::ArgAction::Count,
        help_heading = "Global options"
    )]
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
    Status(StatusArgs),
    /// Print the stacks' outputs
    #[command(
        after_help = "Example:\n  mlops-infra outputs staging --output json | jq '.storage.DataBucketName'"
    )]
    Outputs(OutputsArgs),
    /// Delete an environment's stacks in reverse dependency order
    #[command(after_help = "Example:\n  mlops-infra destroy dev --yes")]
    Destroy(DestroyArgs),
    /// Print a shell completion script
    #[command(
        after_help = "Examples:\n  mlops-infra completions bash > ~/.local/share/bash-completion/completions/mlops-infra\n  mlops-infra completions zsh > \"${fpath[1]}/_mlops-infra\"\n  mlops-infra completions fish > ~/.config/fish/completions/mlops-infra.fish"
    )]
    Completions(CompletionsArgs),
    /// List each model's packages in the registry: version, status, creation time, metrics
    #[command(
        after_help = "Examples:\n  mlops-infra models staging\n  mlops-infra models staging --model trees --output json"
    )]
    Models(ModelsArgs),
    /// Identify a photo through the router (parent, then child model), as an app calls it
    #[command(
        after_help = "Examples:\n  mlops-infra identify staging payloads/leaf.jpg\n  mlops-infra identify prod photo.jpg --parent plants --output json"
    )]
    Identify(IdentifyArgs),
    /// Show the latest monitoring report of each model's endpoint: traffic, confidence, drift
    #[command(
        after_help = "Examples:\n  mlops-infra monitor prod\n  mlops-infra monitor prod --model trees --output json"
    )]
    Monitor(MonitorArgs),
    /// Review the photos the models were unsure of, in a local web page (your own AWS credentials)
    #[command(
        after_help = "Examples:\n  mlops-infra review staging\n  mlops-infra review staging --model trees --port 8765 --no-browser"
    )]
    Review(ReviewArgs),
    /// Approve a model package (the newest pending one unless a version is given)
    #[command(
        after_help = "Examples:\n  mlops-infra approve staging trees\n  mlops-infra approve staging trees 4 --reason \"top-1 0.91 on the May dataset\""
    )]
    Approve(ApproveArgs),
    /// Reject a model package (the newest pending one unless a version is given)
    #[command(
        after_help = "Example:\n  mlops-infra reject staging trees 4 --reason \"confuses oaks and beeches\""
    )]
    Reject(RejectArgs),
    /// Acceptance-test an environment's endpoints with the sample payloads, and record the result
    #[command(
        after_help = "Examples:\n  mlops-infra test staging\n  mlops-infra test staging --model trees"
    )]
    Test(TestArgs),
    /// Promote the package a model serves on one environment to another, then apply its endpoint there
    #[command(after_help = "Example:\n  mlops-infra promote trees --from staging --to prod")]
    Promote(PromoteArgs),
    /// Start a model's pipeline, or show its recent runs
    #[command(subcommand)]
    Pipeline(PipelineCommand),
    /// Run the environment's self-deploy CodeBuild project
    #[command(subcommand)]
    Ci(CiCommand),
    /// Check credentials, account and region, the platform's roles, and deploy permissions
    #[command(after_help = "Example:\n  mlops-infra doctor staging")]
    Doctor(EnvironmentArgs),
}

#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Environment name: `environments/<ENV>.yaml`
    pub environment: String,
    /// Only this model
    #[arg(long)]
    pub model: Option<String>,
    /// Newest versions shown per model
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct IdentifyArgs {
    /// Environment name: `environments/<ENV>.yaml`
    pub environment: String,
    /// The photo (JPEG or PNG)
    pub image: std::path::PathBuf,
    /// The parent model whose router to ask (needed when the environment has several)
    #[arg(long)]
    pub parent: Option<String>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// Environment name: `environments/<ENV>.yaml`
    pub environment: String,
    /// A parent model (its photos) or a child model (only the photos routed to it); needed
    /// when the environment has several parents
    #[arg(long)]
    pub model: Option<String>,
    /// Port on 127.0.0.1 to serve the page on (default: a free one)
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Print the page's address without opening a browser
    #[arg(long)]
    pub no_browser: bool,
}

#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// Environment name: `environments/<ENV>.yaml`
    pub environment: String,
    /// Only this model
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// Environment name: `environments/<ENV>.yaml`
    pub environment: String,
    /// Model name, as in the environment's `models`
    pub model: String,
    /// Package version (default: the newest pending one)
    pub version: Option<u64>,
    /// Why; recorded as the package's approval description
    #[arg(long, default_value = "approved with mlops-infra")]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct RejectArgs {
    /// Environment name: `environments/<ENV>.yaml`
    pub environment: String,
    /// Model name, as in the environment's `models`
    pub model: String,
    /// Package version (default: the newest pending one)
    pub version: Option<u64>,
    /// Why; recorded as the package's approval description
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Environment name: `environments/<ENV>.yaml`
    pub environment: String,
    /// Only this model's endpoint
    #[arg(long)]
    pub model: Option<String>,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// Model name
    pub model: String,
    /// Environment whose endpoint passed its tests
    #[arg(long)]
    pub from: String,
    /// Environment to promote to; its endpoint must serve `promoted`
    #[arg(long)]
    pub to: String,
    /// Do not ask for confirmation
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Start a run of a model's pipeline
    #[command(
        after_help = "Example:\n  mlops-infra pipeline start staging trees --param InputDataUri=s3://bucket/raw/trees/2026-11/"
    )]
    Start(PipelineStartArgs),
    /// Show the recent runs of the environment's pipelines
    #[command(after_help = "Example:\n  mlops-infra pipeline status staging trees")]
    Status(PipelineStatusArgs),
}

#[derive(Debug, Args)]
pub struct PipelineStartArgs {
    /// Environment name: `environments/<ENV>.yaml`
    pub environment: String,
    /// Model name
    pub model: String,
    /// A pipeline parameter for this run; repeatable
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PipelineStatusArgs {
    /// Environment name: `environments/<ENV>.yaml`
    pub environment: String,
    /// Only this model
    pub model: Option<String>,
    /// Runs shown per pipeline
    #[arg(long, default_value_t = 5)]
    pub limit: i32,
}

#[derive(Debug, Subcommand)]
pub enum CiCommand {
    /// Start the self-deploy build and follow its phases and log to the end
    #[command(after_help = "Example:\n  mlops-infra ci run staging")]
    Run(CiRunArgs),
}

#[derive(Debug, Args)]
pub struct CiRunArgs {
    /// Environment name: `environments/<ENV>.yaml`
    pub environment: String,
    /// Start the build and exit without following it
    #[arg(long)]
    pub no_follow: bool,
}

#[derive(Debug, Args)]
pub struct EnvironmentArgs {
    /// Environment name: `environments/<ENV>.yaml`
    pub environment: String,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Environment name: `environments/<ENV>.yaml`
    pub environment: String,
    /// Run drift detection and list what was changed outside CloudFormation
    #[arg(long)]
    pub drift: bool,
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
    /// Plan only these stacks (ids such as `storage` or `endpoint-plants`, or full stack names)
    #[arg(long = "stack", value_name = "ID")]
    pub stacks: Vec<String>,
    /// Save the plan, to apply exactly it later with `apply FILE`
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Run drift detection on the deployed stacks and show what was changed outside CloudFormation
    #[arg(long)]
    pub refresh: bool,
    /// Plan drift-aware change sets that put back what was changed outside CloudFormation (implies --refresh)
    #[arg(long)]
    pub revert_drift: bool,
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
    /// Apply only these stacks (ids such as `storage`, or full stack names)
    #[arg(long = "stack", value_name = "ID")]
    pub stacks: Vec<String>,
    /// Stacks applied at once
    // 16: with hundreds of models, fewer keeps apply well above its longest chain of stacks
    // (docs/PERFORMANCE.md); CloudFormation throttling is retried with backoff.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Put back what was changed outside CloudFormation (drift-aware change sets; a rollback restores what was there)
    #[arg(long)]
    pub revert_drift: bool,
    /// The result as JSON on stdout too (the default when stdout is not a terminal)
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct OutputsArgs {
    /// Environment name: `environments/<ENV>.yaml`
    pub environment: String,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
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
