//! mlops-infra: environment files → rendered, validated CloudFormation for an MLOps platform
//! on AWS SageMaker. `docs/ARCHITECTURE.md` walks the data flow through these modules.

pub mod apply;
pub mod aws;
pub mod cli;
pub mod commands;
pub mod config;
pub mod deployed_record;
pub mod error;
pub mod graph;
pub mod iam;
pub mod pipeline;
pub mod plan;
pub mod plan_view;
pub mod refactor;
pub mod release;
pub mod render;
pub mod resource_types;
pub mod retrain;
pub mod review;
pub mod router;
pub mod stacks;
pub mod state;
pub mod step_code;
pub mod template;
pub mod validate;
pub mod view;
pub mod zip;
