//! A cleanup stack: actions registered as resources are created, run in
//! reverse order exactly once, whatever happened in between.

use futures::FutureExt;
use futures::future::BoxFuture;
use std::panic::AssertUnwindSafe;

type Action = Box<dyn FnOnce() -> BoxFuture<'static, Result<(), String>> + Send>;

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
    /// action does not stop the others; each result is returned with its name.
    pub async fn unwind(&mut self) -> Vec<(String, Result<(), String>)> {
        let mut results = Vec::new();
        while let Some((name, action)) = self.actions.pop() {
            let result = match AssertUnwindSafe(async move { action().await })
                .catch_unwind()
                .await
            {
                Ok(r) => r,
                Err(panic) => Err(format!("cleanup panicked: {}", panic_message(&panic))),
            };
            results.push((name, result));
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
        assert_eq!(
            results[0],
            ("third".to_string(), Err("third failed".to_string()))
        );
        assert_eq!(
            results[1],
            (
                "second".to_string(),
                Err("cleanup panicked: boom in second".to_string())
            )
        );
        assert_eq!(results[2], ("first".to_string(), Ok(())));
        assert!(stack.is_empty());
        assert!(
            stack.unwind().await.is_empty(),
            "each action runs exactly once"
        );
    }
}
