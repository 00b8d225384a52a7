//! `-v`: one line per AWS API call (service, operation, HTTP status, time), `-vv`: one per
//! attempt too, through an SDK interceptor every client carries. The lines go to a sink the
//! caller gives (stderr in `main`), so the adapters never print.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// Where the log lines go.
pub type Sink = Arc<dyn Fn(&str) + Send + Sync>;

#[derive(Clone)]
pub struct CallLog {
    sink: Sink,
    /// `-vv`: every attempt, retries included.
    attempts: bool,
}

impl CallLog {
    pub fn new(sink: Sink, attempts: bool) -> CallLog {
        CallLog { sink, attempts }
    }
}

impl fmt::Debug for CallLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallLog")
            .field("attempts", &self.attempts)
            .finish()
    }
}

#[derive(Debug, Clone, Copy)]
struct Started(Instant);

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

/// `cloudformation.DescribeStacks`.
fn operation(cfg: &ConfigBag) -> String {
    match cfg.load::<Metadata>() {
        Some(metadata) => format!("{}.{}", metadata.service(), metadata.name()),
        None => "(unknown operation)".to_string(),
    }
}

fn outcome(context: &FinalizerInterceptorContextRef<'_>) -> String {
    match context.response() {
        Some(response) => response.status().as_u16().to_string(),
        None => "no response".to_string(),
    }
}

fn elapsed(cfg: &ConfigBag) -> String {
    cfg.load::<Started>()
        .map(|started| format!("{} ms", started.0.elapsed().as_millis()))
        .unwrap_or_default()
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Started(Instant::now()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.attempts {
            (self.sink)(&format!(
                "[aws]   attempt: {} {} ({})",
                operation(cfg),
                outcome(context),
                elapsed(cfg)
            ));
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        (self.sink)(&format!(
            "[aws] {} {} {}",
            operation(cfg),
            outcome(context),
            elapsed(cfg)
        ));
        Ok(())
    }
}
