//! Options from code and the options in force, as the example protocol has
//! them.
//!
//! `EXAMPLE_OPTIONS` is a JSON object of option name → value, each set on
//! the [`Builder`] as code does it (so it wins over its `EGRESS_CLIENT_*`
//! variable): `{"timeout": "500ms", "max_entries": 3, "cache": true}`.
//! Durations are strings in the variables' syntax ("2", "2s", "500ms") or
//! numbers of seconds; `max_entries` an integer, `cache` a boolean,
//! `target` a string. The command line's `--target`, `--timeout` and
//! `--cache` are set after it, so they win over the same keys.
//!
//! `{"options": {}}` answers the options in force, durations as Go prints
//! them up to the millisecond: "2s", "500ms", "0s".

use std::time::Duration;

use egress_client::{Builder, Options, parse_seconds};
use serde_json::{Map, Value, json};

/// The variable read.
pub(crate) const VARIABLE: &str = "EXAMPLE_OPTIONS";

/// `builder` with the options of `EXAMPLE_OPTIONS`, if it is set and not empty.
pub(crate) fn from_environment(builder: Builder) -> Result<Builder, String> {
    match std::env::var(VARIABLE) {
        Ok(text) if !text.trim().is_empty() => {
            apply(builder, &text).map_err(|why| format!("{VARIABLE}={text}: {why}"))
        }
        _ => Ok(builder),
    }
}

/// `builder` with each option of the JSON object `text` set on it.
fn apply(mut builder: Builder, text: &str) -> Result<Builder, String> {
    let options: Map<String, Value> =
        serde_json::from_str(text).map_err(|err| format!("not a JSON object: {err}"))?;
    for (name, value) in &options {
        let wrong = |expected: &str| format!("{name} takes {expected}, not {value}");
        builder = match name.as_str() {
            "target" => builder.target(value.as_str().ok_or_else(|| wrong("a string"))?),
            "cache" => builder.cache(value.as_bool().ok_or_else(|| wrong("a boolean"))?),
            "max_entries" => {
                let count = value.as_u64().and_then(|n| usize::try_from(n).ok());
                builder.max_entries(count.ok_or_else(|| wrong("an integer"))?)
            }
            "timeout" => builder.timeout(duration(value).map_err(|_| wrong("a duration"))?),
            "stale_if_error" => {
                builder.stale_if_error(duration(value).map_err(|_| wrong("a duration"))?)
            }
            "keepalive_interval" => {
                builder.keepalive_interval(duration(value).map_err(|_| wrong("a duration"))?)
            }
            "connect_timeout" => {
                builder.connect_timeout(duration(value).map_err(|_| wrong("a duration"))?)
            }
            _ => return Err(format!("no option is called {name:?}")),
        };
    }
    Ok(builder)
}

/// "500ms", "2s", "2" or a number of seconds.
fn duration(value: &Value) -> Result<Duration, String> {
    match value {
        Value::String(text) => parse_seconds(text),
        Value::Number(number) => number
            .as_f64()
            .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
            .ok_or_else(|| format!("{number} is not a number of seconds")),
        _ => Err(format!("{value} is not a duration")),
    }
}

/// The reply to `{"options": {}}`.
pub(crate) fn options_json(options: &Options) -> Value {
    json!({"options": {
        "target": options.target,
        "timeout": go_duration(options.timeout),
        "cache": options.cache,
        "max_entries": options.max_entries,
        "stale_if_error": go_duration(options.stale_if_error),
        "keepalive_interval": go_duration(options.keepalive_interval),
        "connect_timeout": go_duration(options.connect_timeout),
    }})
}

/// Whole seconds as "<n>s", else milliseconds as "<n>ms" (below a
/// millisecond is dropped).
fn go_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(text: &str) -> Result<Options, String> {
        let builder = apply(Builder::default(), text)?;
        builder
            .options_from(|key| (key == "EGRESS_CLIENT_TIMEOUT").then(|| "9s".to_owned()))
            .map_err(|err| err.to_string())
    }

    #[test]
    fn each_option_is_set_as_code_and_wins_over_its_variable() {
        let given = options(
            r#"{"target": "unix:/x", "timeout": "500ms", "cache": true, "max_entries": 3,
                "stale_if_error": 30, "keepalive_interval": "2s", "connect_timeout": "1.5"}"#,
        )
        .unwrap();
        assert_eq!(
            given,
            Options {
                target: "unix:/x".into(),
                timeout: Duration::from_millis(500),
                cache: true,
                max_entries: 3,
                stale_if_error: Duration::from_secs(30),
                keepalive_interval: Duration::from_secs(2),
                connect_timeout: Duration::from_millis(1500),
            }
        );
        assert_eq!(options("{}").unwrap().timeout, Duration::from_secs(9));
    }

    #[test]
    fn unknown_options_and_wrong_types_are_refused() {
        assert!(
            options(r#"{"time_out": "1s"}"#)
                .unwrap_err()
                .contains("time_out")
        );
        assert!(
            options(r#"{"cache": "yes"}"#)
                .unwrap_err()
                .contains("boolean")
        );
        assert!(
            options(r#"{"max_entries": -1}"#)
                .unwrap_err()
                .contains("integer")
        );
        assert!(
            options(r#"{"timeout": "soon"}"#)
                .unwrap_err()
                .contains("duration")
        );
        assert!(options("[1]").unwrap_err().contains("JSON object"));
    }

    #[test]
    fn durations_print_as_seconds_or_milliseconds() {
        assert_eq!(go_duration(Duration::from_secs(2)), "2s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(go_duration(Duration::ZERO), "0s");
        let reply = options_json(&Options::default());
        assert_eq!(
            reply,
            json!({"options": {"target": "127.0.0.1:50051", "timeout": "2s", "cache": false,
                "max_entries": 10000, "stale_if_error": "0s", "keepalive_interval": "30s",
                "connect_timeout": "60s"}})
        );
    }
}
