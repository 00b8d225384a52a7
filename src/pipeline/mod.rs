//! SageMaker pipeline definitions: a typed model, the generator for the platform's pipeline,
//! and the checks `validate` runs on every definition.
