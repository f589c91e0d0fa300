//! `--shard k/n`: one of n disjoint parts of the selected scenarios, so CI
//! can split a run over jobs (as nextest's `--partition count:k/n` does).
//! Deterministic by scenario name: the names are sorted and dealt out in
//! turn, so every job that sees the same scenarios takes the same part, the
//! parts together are all of them, and their sizes differ by at most one.

use std::fmt;
use std::str::FromStr;

/// Part `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which part, from 1.
    pub index: usize,
    /// How many parts.
    pub count: usize,
}

/// Why a `--shard` value is not `k/n` with 1 ≤ k ≤ n.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("--shard `{0}`: expected k/n with 1 <= k <= n, e.g. 2/3")]
pub struct ShardError(String);

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || ShardError(text.to_string());
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let index: usize = k.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The items of this part, in their original order. Items with the
    /// same name go to the same part.
    pub fn select<T>(&self, items: Vec<T>, name: impl Fn(&T) -> &str) -> Vec<T> {
        let mut names: Vec<String> = items.iter().map(|i| name(i).to_string()).collect();
        names.sort();
        names.dedup();
        let mine: Vec<&String> = names
            .iter()
            .enumerate()
            .filter(|(i, _)| i % self.count == self.index - 1)
            .map(|(_, n)| n)
            .collect();
        items
            .into_iter()
            .filter(|i| mine.iter().any(|n| n.as_str() == name(i)))
            .collect()
    }
}
