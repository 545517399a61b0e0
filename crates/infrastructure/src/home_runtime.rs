//! Background tasks that belong to the process, not to a request.

use std::future::Future;

use tokio::runtime::Handle;

/// The runtime a component was made on, if any: the one the process serves
/// from. Tasks spawned here outlive the request that started them (actix runs
/// each worker on a runtime of its own), or the caller's runtime when the
/// component was made outside one.
#[derive(Clone, Debug)]
pub(crate) struct HomeRuntime(Option<Handle>);

impl HomeRuntime {
    /// The runtime current where this is called, if any.
    pub(crate) fn current() -> Self {
        Self(Handle::try_current().ok())
    }

    /// Runs `task` on its own, without waiting for it.
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match &self.0 {
            Some(runtime) => drop(runtime.spawn(task)),
            None => drop(tokio::spawn(task)),
        }
    }
}
