//! The release flow's core: which package each endpoint serves (`serving`), the records the
//! flow keeps in SSM (`records`), and the acceptance tests of an environment's endpoints
//! (`acceptance`). The commands in `commands/` drive these through `aws::platform::Platform`.

pub mod acceptance;
pub mod records;
pub mod routes;
pub mod serving;
