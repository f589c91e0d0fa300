//! The run as a matrix: scenario rows × (target, Kubernetes version)
//! columns, in the order they first appear; shared by the HTML report and
//! the GitHub step summary.

use crate::runner::{RunOutcome, ScenarioOutcome};

/// One column: a target and, on clusters, its Kubernetes version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The target's name.
    pub target: String,
    /// `--k8s-version`, where there was one.
    pub version: Option<String>,
}

impl Column {
    /// `kind k8s 1.35`, or the target alone.
    pub fn name(&self) -> String {
        match &self.version {
            Some(v) => format!("{} k8s {v}", self.target),
            None => self.target.clone(),
        }
    }
}

/// The run's rows and columns.
pub struct Matrix<'a> {
    run: &'a RunOutcome,
    /// Scenario names.
    pub rows: Vec<&'a str>,
    /// Target × version.
    pub columns: Vec<Column>,
}

impl<'a> Matrix<'a> {
    /// The matrix of `run`.
    pub fn of(run: &'a RunOutcome) -> Self {
        let mut columns = Vec::new();
        let mut rows = Vec::new();
        for o in &run.scenarios {
            let column = column_of(o);
            if !columns.contains(&column) {
                columns.push(column);
            }
            if !rows.contains(&o.scenario.as_str()) {
                rows.push(o.scenario.as_str());
            }
        }
        Matrix { run, rows, columns }
    }

    /// The outcome in one cell, with its index in the run, if that scenario
    /// ran there.
    pub fn cell(&self, row: &str, column: &Column) -> Option<(usize, &'a ScenarioOutcome)> {
        self.run
            .scenarios
            .iter()
            .enumerate()
            .find(|(_, o)| o.scenario == row && column_of(o) == *column)
    }
}

/// The column an outcome belongs to.
pub fn column_of(o: &ScenarioOutcome) -> Column {
    Column {
        target: o.target.to_string(),
        version: o.k8s_version.clone(),
    }
}
