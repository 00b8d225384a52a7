//! Tera templates + an `Environment` → one `RenderedStack` per stack.
//!
//! Templates are Jinja2-style (Tera 2): `{% include %}`, components for shared fragments, and
//! filters for CloudFormation: `json` (any value as inline JSON, which is valid YAML),
//! `cfn_tags` (a map as a `[{Key, Value}]` list), `pascal` (`tree-ferns` → `TreeFerns`, for
//! logical IDs) and `fingerprint` (a short stable hash). An undefined variable is an error. The
//! rendered YAML is parsed into the template model and written back in canonical form.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tera::{Context, Kwargs, State, Tera, TeraResult, Value};

use crate::config::{Environment, Model};
use crate::error::Error;
use crate::stacks::{DEPLOY_ROLE, DEPLOY_ROLE_STACK, StackSpec, stacks};
use crate::step_code::StepCode;
use crate::template::{Node, Template};

/// The folder of templates inside a project.
pub const TEMPLATES_DIR: &str = "templates";
/// The template metadata key under which a stack declares the upstream outputs it consumes.
pub const METADATA_KEY: &str = "MlopsInfra";

/// A parameter filled from another stack's output at apply time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Input {
    pub parameter: String,
    /// The producing stack's id (`storage`).
    pub stack: String,
    pub output: String,
}

/// One stack, rendered and parsed.
#[derive(Debug, Clone)]
pub struct RenderedStack {
    pub spec: StackSpec,
    /// The template file it came from, relative to the project (`templates/storage.yaml.tera`).
    pub source: PathBuf,
    pub template: Template,
    /// The canonical YAML body, as written by `render` and sent to CloudFormation.
    pub body: String,
    pub inputs: Vec<Input>,
    /// Files apply uploads before the stack: the pipeline step code, and pipeline definitions
    /// too large to inline.
    pub assets: Vec<Asset>,
    /// The CloudFormation service role the stack is deployed through; `None` for the bootstrap
    /// stacks that create the role, which the caller deploys.
    pub deploy_role: Option<String>,
    /// `(parameter, model)`: parameters the plan fills with the model package each model's
    /// `serving` choice resolves to (an endpoint's `ModelPackageArn`; a router's one per model).
    pub serving: Vec<(String, String)>,
    /// The bucket apply uploads the template body to first (over CloudFormation's inline
    /// limit), or `None` when it is sent inline.
    pub template_bucket: Option<String>,
}

impl RenderedStack {
    /// The buckets apply writes to before the stack's change set: its assets' and its
    /// template's.
    pub fn upload_buckets(&self) -> std::collections::BTreeSet<&str> {
        self.assets
            .iter()
            .map(|asset| asset.bucket.as_str())
            .chain(self.template_bucket.as_deref())
            .collect()
    }
}

/// The router template's parameter for a model's served package: `TreesPackageArn`.
pub fn package_parameter(model: &str) -> String {
    format!("{}PackageArn", pascal_case(model))
}

/// A file the stack reads from S3, uploaded by apply before the stack's change set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Asset {
    pub bucket: String,
    pub key: String,
    /// The content; base64 when `base64` (a function's ZIP package). Shared: every pipeline
    /// stack ships the same step code, and a copy per stack would grow with the models.
    pub body: std::sync::Arc<str>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub base64: bool,
}

impl Asset {
    /// The bytes uploaded.
    pub fn bytes(&self) -> Vec<u8> {
        if self.base64 {
            aws_smithy_types::base64::decode(&self.body).unwrap_or_default()
        } else {
            self.body.as_bytes().to_vec()
        }
    }

    /// `s3://<bucket>/<key>`.
    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// A pipeline definition (`pipelines/<pipeline>/<hash>.json`), as opposed to step code.
    pub fn is_pipeline_definition(&self) -> bool {
        self.key.starts_with(PIPELINES_PREFIX)
    }
}

/// Key prefix of uploaded pipeline definitions.
const PIPELINES_PREFIX: &str = "pipelines/";

/// Pipeline definitions up to this size are inlined in the template
/// (`PipelineDefinitionBody`); larger ones are uploaded and referenced
/// (`PipelineDefinitionS3Location`), keeping templates well inside CloudFormation's limits.
pub const MAX_INLINE_PIPELINE_DEFINITION: usize = 100_000;

/// Where a pipeline definition goes: `None` to inline it, or the asset to upload, named by
/// the content's hash so that an unchanged definition is the same object.
pub fn pipeline_asset(
    pipeline: &str,
    bucket: &str,
    definition: &str,
    limit: usize,
) -> Option<Asset> {
    (definition.len() > limit).then(|| Asset {
        bucket: bucket.to_string(),
        key: format!("{PIPELINES_PREFIX}{pipeline}/{}.json", hash(definition)),
        body: definition.into(),
        base64: false,
    })
}

/// Renders every stack of `environment`; reports every stack that fails, not just the first.
pub fn render(
    project_dir: &Path,
    environment: &Environment,
) -> Result<Vec<RenderedStack>, Vec<Error>> {
    let tera = load_templates(project_dir).map_err(|error| vec![error])?;
    let specs = stacks(environment);
    let step_code = if specs
        .iter()
        .any(|spec| spec.pipeline_definition || spec.monitoring_definition)
    {
        let step_code = StepCode::load(project_dir).map_err(|error| vec![error])?;
        step_code
            .require(&crate::pipeline::generate::SCRIPTS)
            .map_err(|error| vec![error])?;
        Some(step_code)
    } else {
        None
    };
    let mut function_code = std::collections::BTreeMap::new();
    for folder in specs.iter().filter_map(|spec| spec.function.as_deref()) {
        if function_code.contains_key(folder) {
            continue;
        }
        let code = StepCode::load_folder(project_dir, folder).map_err(|error| vec![error])?;
        let user = if folder == crate::stacks::ROUTER_CODE {
            "the router runs"
        } else {
            "the retrain function runs"
        };
        code.require_in(folder, user, &["handler.py"])
            .map_err(|error| vec![error])?;
        function_code.insert(folder.to_string(), code);
    }
    let code = Code {
        steps: step_code.as_ref(),
        functions: &function_code,
    };
    let shared = shared_context(environment, &specs);
    let mut rendered = Vec::new();
    let mut errors = Vec::new();
    for spec in &specs {
        match render_stack(&tera, &shared, environment, spec, &code) {
            Ok(stack) => rendered.push(stack),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        assign_deploy_roles(environment, &mut rendered);
        Ok(rendered)
    } else {
        Err(errors)
    }
}

fn load_templates(project_dir: &Path) -> Result<Tera, Error> {
    let directory = project_dir.join(TEMPLATES_DIR);
    let mut files = Vec::new();
    collect_templates(&directory, &mut files).map_err(|source| Error::Usage {
        message: format!(
            "cannot read templates from {}: {source}",
            directory.display()
        ),
        hint: Some("run from the project folder or pass `-C/--project-dir`".into()),
    })?;
    files.sort();
    let mut tera = Tera::new();
    // Nothing here is HTML: never escape.
    tera.autoescape_on(Vec::<&str>::new());
    tera.set_fallback_prefixes([format!("{TEMPLATES_DIR}/")])
        .map_err(template_error)?;
    tera.register_filter("json", json);
    tera.register_filter("cfn_tags", cfn_tags);
    tera.register_filter("pascal", pascal);
    tera.register_filter("fingerprint", fingerprint);
    let named: Vec<(PathBuf, Option<String>)> = files
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(project_dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            (path, Some(name))
        })
        .collect();
    tera.add_template_files(named).map_err(template_error)?;
    Ok(tera)
}

fn collect_templates(directory: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(directory)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_templates(&path, files)?;
        } else if path
            .extension()
            .is_some_and(|extension| extension == "tera")
        {
            files.push(path);
        }
    }
    Ok(())
}

fn template_error(error: tera::Error) -> Error {
    Error::Template {
        report: format!("{error}")
            .trim_start_matches("error: ")
            .trim_end()
            .to_string(),
        hint: Some("fix the template at the position shown".into()),
    }
}

#[derive(Serialize)]
struct StackContext<'a> {
    id: &'a str,
    name: &'a str,
    model: Option<&'a Model>,
}

/// The code the stacks ship, loaded once for all of them.
struct Code<'a> {
    steps: Option<&'a StepCode>,
    /// By project folder (`router`, `retrain`).
    functions: &'a std::collections::BTreeMap<String, StepCode>,
}

/// A route of a parent model: the sub-group's name and the child model serving it.
#[derive(Serialize)]
struct Route<'a> {
    name: &'a str,
    model: &'a Model,
}

/// What every stack's template sees: the environment, its models with routes, every stack's
/// name. Built once: tera's maps and lists are shared, so each stack's copy costs nothing, where
/// serialising the environment per stack grew with models × stacks (most of a 1,000-model
/// render).
fn shared_context(environment: &Environment, specs: &[StackSpec]) -> Context {
    let mut context = Context::new();
    context.insert("environment", environment);
    context.insert("prefix", &environment.prefix());
    // Endpoints serving promoted packages may serve another account's (see docs/release.md).
    context.insert(
        "serves_promoted",
        &environment
            .models
            .iter()
            .any(|model| model.serving == crate::config::Serving::Promoted),
    );
    // The models with a router in front (a `routes` list).
    let parents: Vec<&Model> = environment
        .models
        .iter()
        .filter(|model| !model.routes.is_empty())
        .collect();
    context.insert("parents", &parents);
    let names: indexmap::IndexMap<&str, &str> = specs
        .iter()
        .map(|spec| (spec.id.as_str(), spec.name.as_str()))
        .collect();
    context.insert("stack_names", &names);
    context
}

fn render_stack(
    tera: &Tera,
    shared: &Context,
    environment: &Environment,
    spec: &StackSpec,
    code: &Code,
) -> Result<RenderedStack, Error> {
    let step_code = code.steps;
    let source = PathBuf::from(TEMPLATES_DIR).join(&spec.template);
    let name = source.to_string_lossy().replace('\\', "/");
    if !tera.contains_template(&name) {
        return Err(Error::Usage {
            message: format!(
                "stack `{}` needs template {name}, which does not exist",
                spec.id
            ),
            hint: Some(format!("create {name}")),
        });
    }
    let mut context = shared.clone();
    context.insert(
        "stack",
        &StackContext {
            id: &spec.id,
            name: &spec.name,
            model: spec
                .model
                .as_deref()
                .and_then(|model| environment.model(model)),
        },
    );
    let mut assets = Vec::new();
    if spec.pipeline_definition
        && let Some(model) = spec
            .model
            .as_deref()
            .and_then(|model| environment.model(model))
        && let Some(step_code) = step_code
    {
        let bucket = &environment.storage.artifacts_bucket_name;
        // The code first: the definition names its keys.
        assets.extend(step_code.assets(bucket));
        let definition = crate::pipeline::generate::generate(&crate::pipeline::config::spec(
            environment,
            model,
            step_code.uri(bucket),
        ));
        let json = definition
            .to_json_string()
            .map_err(|error| Error::Template {
                report: format!(
                    "cannot write the pipeline definition of model `{}`: {error}",
                    model.name
                ),
                hint: None,
            })?;
        let asset = pipeline_asset(
            &model.pipeline_name,
            &environment.storage.artifacts_bucket_name,
            &json,
            MAX_INLINE_PIPELINE_DEFINITION,
        );
        context.insert("pipeline_definition", &json);
        context.insert(
            "pipeline_definition_s3",
            &asset.as_ref().map(|asset| (&asset.bucket, &asset.key)),
        );
        assets.extend(asset);
    }
    let mut serving = Vec::new();
    if let Some((folder, function_code)) = spec
        .function
        .as_deref()
        .and_then(|folder| Some((folder, code.functions.get(folder)?)))
    {
        let asset = function_code.zip_asset(&environment.storage.artifacts_bucket_name, folder);
        context.insert("function_code", &(&asset.bucket, &asset.key));
        assets.push(asset);
    }
    if spec.function.as_deref() == Some(crate::retrain::CODE) {
        context.insert(
            "retrain_config",
            &crate::retrain::config(environment).to_json(),
        );
        context.insert("retrain_tick", crate::retrain::TICK);
    }
    if let (Some(crate::stacks::ROUTER_CODE), Some(parent)) = (
        spec.function.as_deref(),
        spec.model
            .as_deref()
            .and_then(|model| environment.model(model)),
    ) {
        let routes: Vec<Route> = crate::router::routes(environment, parent)
            .into_iter()
            .map(|(name, model)| Route { name, model })
            .collect();
        context.insert(
            "router_config",
            &crate::router::config(environment, parent).to_json(),
        );
        serving.push((package_parameter(&parent.name), parent.name.clone()));
        serving.extend(routes.iter().map(|route| {
            (
                package_parameter(&route.model.name),
                route.model.name.clone(),
            )
        }));
        context.insert("routes", &routes);
    } else if let Some(model) = &spec.model {
        serving.push((
            crate::release::serving::PACKAGE_PARAMETER.to_string(),
            model.clone(),
        ));
    }
    if spec.monitoring_definition
        && let Some(model) = spec
            .model
            .as_deref()
            .and_then(|model| environment.model(model))
        && let Some(step_code) = step_code
    {
        let bucket = &environment.storage.artifacts_bucket_name;
        assets.extend(step_code.assets(bucket));
        let pipeline = crate::pipeline::config::spec(environment, model, step_code.uri(bucket));
        let monitoring = crate::pipeline::config::monitoring(environment, model);
        let json = crate::pipeline::monitoring::generate(&pipeline, &monitoring)
            .to_json_string()
            .map_err(|error| Error::Template {
                report: format!(
                    "cannot write the monitoring pipeline of model `{}`: {error}",
                    model.name
                ),
                hint: None,
            })?;
        context.insert("monitoring_definition", &json);
    }
    let text = tera.render(&name, &context).map_err(template_error)?;

    let template = parse_rendered(&name, &text)?;
    let inputs = inputs(&name, &template)?;
    serving.retain(|(parameter, _)| template.parameters.contains_key(parameter));
    let body = template.to_yaml_string();
    let template_bucket = (body.len() > crate::validate::MAX_INLINE_BODY)
        .then(|| environment.storage.artifacts_bucket_name.clone());
    Ok(RenderedStack {
        spec: spec.clone(),
        source,
        body,
        template,
        inputs,
        assets,
        deploy_role: None,
        serving,
        template_bucket,
    })
}

/// Sets each stack's deploying identity: the stack creating the service role and every stack
/// it consumes (transitively) are the bootstrap, deployed by the caller; the rest go through
/// the role.
fn assign_deploy_roles(environment: &Environment, rendered: &mut [RenderedStack]) {
    let Some(start) = rendered
        .iter()
        .position(|stack| stack.spec.id == DEPLOY_ROLE_STACK)
    else {
        return;
    };
    let mut bootstrap = vec![start];
    let mut next = 0;
    while next < bootstrap.len() {
        let consumed: Vec<usize> = rendered[bootstrap[next]]
            .inputs
            .iter()
            .filter_map(|input| {
                rendered
                    .iter()
                    .position(|stack| stack.spec.id == input.stack)
            })
            .collect();
        for index in consumed {
            if !bootstrap.contains(&index) {
                bootstrap.push(index);
            }
        }
        next += 1;
    }
    let role = crate::pipeline::config::role_arn(environment, DEPLOY_ROLE);
    for (index, stack) in rendered.iter_mut().enumerate() {
        stack.deploy_role = (!bootstrap.contains(&index)).then(|| role.clone());
    }
}

/// Parses rendered text; errors quote the rendered line, since it has no line in the template.
fn parse_rendered(name: &str, text: &str) -> Result<Template, Error> {
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|error| {
        let line = error.location().map(|location| location.line());
        let quoted = line
            .and_then(|line| text.lines().nth(line.saturating_sub(1)))
            .map(|content| format!("\n  rendered line {}: {content}", line.unwrap_or_default()))
            .unwrap_or_default();
        Error::Template {
            report: format!("{name}: the rendered template is not valid YAML: {error}{quoted}"),
            hint: Some(
                "check indentation around the template expressions that produce this line".into(),
            ),
        }
    })?;
    Template::from_yaml(&value).map_err(|error| Error::Template {
        report: format!("{name}: the rendered template is not a CloudFormation template: {error}"),
        hint: None,
    })
}

/// Reads `Metadata.MlopsInfra.Inputs`: `{Parameter: "stack.Output"}`.
fn inputs(name: &str, template: &Template) -> Result<Vec<Input>, Error> {
    let Some(declared) = template
        .metadata
        .get(METADATA_KEY)
        .and_then(|node| node.get("Inputs"))
    else {
        return Ok(Vec::new());
    };
    let invalid = |detail: String| {
        Error::Template {
        report: format!("{name}: Metadata.{METADATA_KEY}.Inputs {detail}"),
        hint: Some("map each parameter to `<stack id>.<output>`, e.g. `DataBucketArn: storage.DataBucketArn`".into()),
    }
    };
    let Node::Map(map) = declared else {
        return Err(invalid("must be a map".into()));
    };
    map.iter()
        .map(|(parameter, source)| {
            let (stack, output) = source
                .as_str()
                .and_then(|text| text.split_once('.'))
                .ok_or_else(|| invalid(format!("entry `{parameter}` is not `<stack>.<output>`")))?;
            Ok(Input {
                parameter: parameter.clone(),
                stack: stack.to_string(),
                output: output.to_string(),
            })
        })
        .collect()
}

fn json(value: Value, _: Kwargs, _: &State) -> TeraResult<String> {
    serde_json::to_string(&value).map_err(|error| tera::Error::message(error.to_string()))
}

/// A short, stable hash of a string (64-bit FNV-1a, hex), for logical IDs that must change
/// when what they stand for changes (an API deployment per set of methods).
fn fingerprint(value: &str, _: Kwargs, _: &State) -> String {
    hash(value)
}

/// 64-bit FNV-1a of `text`, as 16 hex digits.
pub(crate) fn hash(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// `tree-ferns` → `TreeFerns`: model names as parts of logical IDs.
fn pascal(value: &str, _: Kwargs, _: &State) -> String {
    pascal_case(value)
}

fn pascal_case(value: &str) -> String {
    value
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn cfn_tags(value: Value, _: Kwargs, _: &State) -> TeraResult<String> {
    let map = value.as_map().ok_or_else(|| {
        tera::Error::message(format!("cfn_tags needs a map, got {}", value.name()))
    })?;
    let tags: Vec<serde_json::Value> = map
        .iter()
        .map(|(key, value)| {
            serde_json::json!({
                "Key": key.to_string(),
                "Value": value.as_str().map_or_else(|| value.to_string(), str::to_string),
            })
        })
        .collect();
    serde_json::to_string(&tags).map_err(|error| tera::Error::message(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_pipeline_definitions_become_content_addressed_assets() {
        assert_eq!(pipeline_asset("p", "bucket", "{}", 10), None);
        let asset =
            pipeline_asset("p", "bucket", "{\"Steps\": []}", 5).expect("too large to inline");
        assert_eq!(asset.bucket, "bucket");
        assert!(
            asset.key.starts_with("pipelines/p/") && asset.key.ends_with(".json"),
            "{}",
            asset.key
        );
        let again = pipeline_asset("p", "bucket", "{\"Steps\": []}", 5).expect("asset");
        assert_eq!(asset.key, again.key, "same content, same key");
        let other = pipeline_asset("p", "bucket", "{\"Steps\": [1]}", 5).expect("asset");
        assert_ne!(asset.key, other.key);
    }
}
