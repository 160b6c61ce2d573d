//! `make bench`: the pieces of the one benchmark run (docs/performance.md). Functions are started as
//! Lambda starts them, against a Runtime API stand-in, beside the local stack `make bench` brings up.

pub mod function;
pub mod report;
pub mod runtime_api;
pub mod stats;
pub mod workflow_cost;

/// The settings the local stack gives every function (`functions.env` beside its stack file).
pub fn functions_env(stack_file: &std::path::Path) -> Result<Vec<(String, String)>, String> {
    let path = stack_file.with_file_name("functions.env");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect())
}
