//! Human review of the photos the router was unsure of: the queue in the data bucket
//! (`queue`), its items (`record`), the page (`page`) and the local server behind
//! `mlops-infra review` (`server`). The flow is walked in docs/review.md.

pub mod page;
pub mod queue;
pub mod record;
pub mod server;
