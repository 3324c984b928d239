//! Runs the unit tests of the example's JSON view. The example itself stays a
//! plain binary (not a test harness) so that `cargo test` builds the program
//! that tests/live.rs runs.

#[path = "../examples/egress-example/json.rs"]
mod json;
