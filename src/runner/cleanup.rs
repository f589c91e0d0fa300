//! A cleanup stack: actions registered as resources are created, run in
//! reverse order exactly once, whatever happened in between.

use futures::FutureExt;
use futures::future::BoxFuture;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

type Action = Box<dyn FnOnce() -> BoxFuture<'static, Result<(), String>> + Send>;

/// What one cleanup action did, and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupResult {
    /// The name it was registered under.
    pub name: String,
    /// Wall time of the action (a Ray head's shutdown can take seconds).
    pub duration: Duration,
    /// Its outcome; a panic becomes an error.
    pub result: Result<(), String>,
}

/// Registered cleanup actions.
#[derive(Default)]
pub struct CleanupStack {
    actions: Vec<(String, Action)>,
}

impl CleanupStack {
    /// An empty stack.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `action` under `name`; it runs before everything pushed earlier.
    pub fn push<F>(&mut self, name: impl Into<String>, action: F)
    where
        F: FnOnce() -> BoxFuture<'static, Result<(), String>> + Send + 'static,
    {
        self.actions.push((name.into(), Box::new(action)));
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Runs every action, last registered first. A failing or panicking
    /// action does not stop the others; each result is returned with its
    /// name and duration.
    pub async fn unwind(&mut self) -> Vec<CleanupResult> {
        let mut results = Vec::new();
        while let Some((name, action)) = self.actions.pop() {
            let started = Instant::now();
            let result = match AssertUnwindSafe(async move { action().await })
                .catch_unwind()
                .await
            {
                Ok(r) => r,
                Err(panic) => Err(format!("cleanup panicked: {}", panic_message(&panic))),
            };
            results.push(CleanupResult {
                name,
                duration: started.elapsed(),
                result,
            });
        }
        results
    }
}

/// The text of a panic payload.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn unwinds_in_reverse_order_past_failures_and_panics() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut stack = CleanupStack::new();
        for name in ["first", "second", "third"] {
            let log = log.clone();
            stack.push(name, move || {
                async move {
                    log.lock().unwrap().push(name);
                    match name {
                        "second" => panic!("boom in second"),
                        "third" => Err("third failed".to_string()),
                        _ => Ok(()),
                    }
                }
                .boxed()
            });
        }
        let results = stack.unwind().await;
        assert_eq!(*log.lock().unwrap(), vec!["third", "second", "first"]);
        let seen: Vec<(&str, Result<(), String>)> = results
            .iter()
            .map(|r| (r.name.as_str(), r.result.clone()))
            .collect();
        assert_eq!(
            seen,
            [
                ("third", Err("third failed".to_string())),
                (
                    "second",
                    Err("cleanup panicked: boom in second".to_string())
                ),
                ("first", Ok(())),
            ]
        );
        assert!(stack.is_empty());
        assert!(
            stack.unwind().await.is_empty(),
            "each action runs exactly once"
        );
    }

    #[tokio::test]
    async fn each_result_carries_how_long_its_action_took() {
        let mut stack = CleanupStack::new();
        stack.push("slow", || {
            async {
                tokio::time::sleep(Duration::from_millis(120)).await;
                Ok(())
            }
            .boxed()
        });
        stack.push("quick", || async { Ok(()) }.boxed());
        let results = stack.unwind().await;
        assert_eq!(results[0].name, "quick");
        assert_eq!(results[1].name, "slow");
        assert!(
            results[1].duration >= Duration::from_millis(120),
            "the slow action's own time is reported: {:?}",
            results[1].duration
        );
        assert!(results[0].duration < results[1].duration, "{results:?}");
    }
}
