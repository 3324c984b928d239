//! Runs the unit tests of the example's options: EXAMPLE_OPTIONS as code
//! options, and the `options` command's reply.

#[allow(dead_code)] // what only the program calls (reading the environment)
#[path = "../examples/egress-example/options.rs"]
mod options;
