//! SageMaker pipeline definitions: a typed model, the generator for the platform's pipeline,
//! and the checks `validate` runs on every definition.
//!
//! `model` (with `arguments`, `condition` and `expression`) parses and writes definition JSON;
//! `check` finds dangling references, bad names and cycles; `generate` turns a `PipelineSpec`
//! into the platform's definition, using `images` for per-region default image URIs.

pub mod arguments;
pub mod check;
pub mod condition;
pub mod config;
pub mod expression;
pub mod generate;
pub mod images;
pub mod model;
pub mod monitoring;
pub mod spec;

pub use check::{Problem, check};
pub use expression::{Argument, Expression, Reference};
pub use generate::generate;
pub use images::{UnknownRegion, image_classification_image, sklearn_processing_image};
pub use model::{
    Parameter, ParameterType, ParseError, PipelineDefinition, Step, StepKind, steps_by_name,
};
pub use spec::PipelineSpec;
