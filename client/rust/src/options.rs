//! [`Options`] and [`Builder`]: one name, one default and one variable per
//! option, the same in every language's client.
//!
//! | option | default | variable |
//! |---|---|---|
//! | target | 127.0.0.1:50051 | EGRESS_CLIENT_TARGET |
//! | timeout | 2 s | EGRESS_CLIENT_TIMEOUT |
//! | cache | off | EGRESS_CLIENT_CACHE |
//! | max_entries | 10 000 | EGRESS_CLIENT_MAX_ENTRIES |
//! | stale_if_error | 0 (off) | EGRESS_CLIENT_STALE_IF_ERROR |
//! | keepalive_interval | 30 s | EGRESS_CLIENT_KEEPALIVE_INTERVAL |
//! | connect_timeout | 60 s | EGRESS_CLIENT_CONNECT_TIMEOUT |
//!
//! An option set on the [`Builder`] wins over its variable, which wins over
//! the default. Durations in variables are seconds, optionally suffixed `s`
//! or `ms` ("2", "2s", "500ms"); booleans are 1/0, true/false, yes/no, on/off.

use std::time::Duration;

use tonic::Code;

use crate::ResolverError;

/// The target used when neither the code nor `EGRESS_CLIENT_TARGET` names one.
pub const DEFAULT_TARGET: &str = "127.0.0.1:50051";
/// How long a call (or connecting) may take unless an option says otherwise.
/// A cache miss runs the Lua policy, hence more than a few ms.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// How many sources (and, separately, pools) the cache holds at most.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;
/// How often the channel pings the sidecar.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a connect through a source may take (name resolution, every
/// candidate, the proxy handshake) unless an option says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// The prefix of every option's environment variable.
pub const ENV_PREFIX: &str = "EGRESS_CLIENT_";

/// Every option of a [`Resolver`](crate::Resolver), resolved against the
/// environment by [`Builder::options`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// `host:port`, `[::1]:port`, `http://host:port` or `unix:/path`.
    pub target: String,
    /// The deadline of each call.
    pub timeout: Duration,
    /// Whether sources and pools are cached in process (and invalidations followed).
    pub cache: bool,
    /// The most sources, and the most pools, the cache keeps (LRU beyond).
    pub max_entries: usize,
    /// How long past its ttl an entry may still be served when the sidecar
    /// is unreachable; zero turns that off.
    pub stale_if_error: Duration,
    /// How often the channel sends HTTP/2 keepalive pings.
    pub keepalive_interval: Duration,
    /// The deadline of a whole connect through a source.
    pub connect_timeout: Duration,
}

impl Default for Options {
    /// The defaults, ignoring the environment.
    fn default() -> Self {
        Self {
            target: DEFAULT_TARGET.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            cache: false,
            max_entries: DEFAULT_MAX_ENTRIES,
            stale_if_error: Duration::ZERO,
            keepalive_interval: DEFAULT_KEEPALIVE_INTERVAL,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// Builds a [`Resolver`](crate::Resolver): options not set here come from the
/// `EGRESS_CLIENT_*` variables, else from the defaults.
///
/// ```no_run
/// # async fn demo() -> Result<(), egress_client::ResolverError> {
/// let resolver = egress_client::Resolver::builder()
///     .target("unix:/run/egress-resolver.sock")
///     .cache(true)
///     .connect()
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct Builder {
    pub(crate) target: Option<String>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) cache: Option<bool>,
    pub(crate) max_entries: Option<usize>,
    pub(crate) stale_if_error: Option<Duration>,
    pub(crate) keepalive_interval: Option<Duration>,
    pub(crate) connect_timeout: Option<Duration>,
}

impl Builder {
    /// The sidecar's address.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// The deadline of each call (more than zero).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Turns the in-process cache on or off.
    pub fn cache(mut self, cache: bool) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The most sources, and the most pools, the cache keeps (at least 1).
    pub fn max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = Some(max_entries);
        self
    }

    /// How long past its ttl an entry may be served while the sidecar is unreachable.
    pub fn stale_if_error(mut self, stale_if_error: Duration) -> Self {
        self.stale_if_error = Some(stale_if_error);
        self
    }

    /// How often the channel pings the sidecar (more than zero).
    pub fn keepalive_interval(mut self, keepalive_interval: Duration) -> Self {
        self.keepalive_interval = Some(keepalive_interval);
        self
    }

    /// The deadline of a whole connect through a source (more than zero).
    pub fn connect_timeout(mut self, connect_timeout: Duration) -> Self {
        self.connect_timeout = Some(connect_timeout);
        self
    }

    /// The options in force: those set here, else the process environment's
    /// `EGRESS_CLIENT_*` variables, else the defaults.
    pub fn options(&self) -> Result<Options, ResolverError> {
        self.options_from(|key| std::env::var(key).ok())
    }

    /// As [`Builder::options`], reading variables through `env`.
    pub fn options_from(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Options, ResolverError> {
        let defaults = Options::default();
        let pick = |name: &str| {
            let key = format!("{ENV_PREFIX}{}", name.to_ascii_uppercase());
            env(&key)
                .filter(|text| !text.trim().is_empty())
                .map(|text| (key, text))
        };
        let options = Options {
            target: given_or(self.target.clone(), pick("target"), defaults.target, |t| {
                Ok(t.trim().to_owned())
            })?,
            timeout: given_or(
                self.timeout,
                pick("timeout"),
                defaults.timeout,
                parse_positive_seconds,
            )?,
            cache: given_or(self.cache, pick("cache"), defaults.cache, parse_bool)?,
            max_entries: given_or(
                self.max_entries,
                pick("max_entries"),
                defaults.max_entries,
                parse_count,
            )?,
            stale_if_error: given_or(
                self.stale_if_error,
                pick("stale_if_error"),
                defaults.stale_if_error,
                parse_seconds,
            )?,
            keepalive_interval: given_or(
                self.keepalive_interval,
                pick("keepalive_interval"),
                defaults.keepalive_interval,
                parse_positive_seconds,
            )?,
            connect_timeout: given_or(
                self.connect_timeout,
                pick("connect_timeout"),
                defaults.connect_timeout,
                parse_positive_seconds,
            )?,
        };
        // Only a value given in code can be out of range here: a variable's
        // parser already refused it, naming the variable.
        for (option, value) in [
            ("timeout", options.timeout),
            ("keepalive_interval", options.keepalive_interval),
            ("connect_timeout", options.connect_timeout),
        ] {
            if value.is_zero() {
                return Err(invalid(format!("{option} must be more than 0, not 0")));
            }
        }
        if options.max_entries < 1 {
            return Err(invalid("max_entries must be at least 1, not 0"));
        }
        Ok(options)
    }
}

/// `given`, else the variable `(key, text)` parsed, else `default`.
fn given_or<T>(
    given: Option<T>,
    variable: Option<(String, String)>,
    default: T,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, ResolverError> {
    match (given, variable) {
        (Some(value), _) => Ok(value),
        (None, Some((key, text))) => parse(&text).map_err(|why| invalid(format!("{key}: {why}"))),
        (None, None) => Ok(default),
    }
}

fn invalid(message: impl Into<String>) -> ResolverError {
    ResolverError::local(Code::InvalidArgument, message)
}

/// "2", "2s", "1.5" or "500ms" as a duration; negative and malformed values refused.
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let raw = text.trim();
    let (number, scale) = match raw.strip_suffix("ms") {
        Some(number) => (number, 0.001),
        None => (raw.strip_suffix('s').unwrap_or(raw), 1.0),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 2, 2s, 500ms)"))?;
    Duration::try_from_secs_f64(value * scale)
        .map_err(|_| format!("{text:?} must be a finite duration of 0 or more"))
}

/// As [`parse_seconds`], refusing 0 too.
pub fn parse_positive_seconds(text: &str) -> Result<Duration, String> {
    let duration = parse_seconds(text)?;
    if duration.is_zero() {
        return Err(format!("{text:?} must be more than 0"));
    }
    Ok(duration)
}

/// 1/0, true/false, yes/no, on/off (any case).
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("{text:?} is not a boolean (true or false)")),
    }
}

/// A positive integer.
pub fn parse_count(text: &str) -> Result<usize, String> {
    let value: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not an integer of 1 or more"))?;
    if value < 1 {
        return Err(format!("{text:?} must be at least 1"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn defaults_apply_without_variables() {
        let options = Builder::default().options_from(env(&[])).unwrap();
        assert_eq!(options, Options::default());
        assert_eq!(options.target, "127.0.0.1:50051");
        assert_eq!(options.timeout, Duration::from_secs(2));
        assert!(!options.cache);
        assert_eq!(options.max_entries, 10_000);
        assert_eq!(options.stale_if_error, Duration::ZERO);
        assert_eq!(options.keepalive_interval, Duration::from_secs(30));
        assert_eq!(options.connect_timeout, Duration::from_secs(60));
    }

    #[test]
    fn variables_win_over_defaults_and_code_over_variables() {
        let vars = env(&[
            ("EGRESS_CLIENT_TARGET", " unix:/run/e.sock "),
            ("EGRESS_CLIENT_TIMEOUT", "500ms"),
            ("EGRESS_CLIENT_CACHE", "Yes"),
            ("EGRESS_CLIENT_MAX_ENTRIES", "7"),
            ("EGRESS_CLIENT_STALE_IF_ERROR", "2s"),
            ("EGRESS_CLIENT_KEEPALIVE_INTERVAL", "1.5"),
            ("EGRESS_CLIENT_CONNECT_TIMEOUT", "7s"),
        ]);
        let from_env = Builder::default().options_from(&vars).unwrap();
        assert_eq!(
            from_env,
            Options {
                target: "unix:/run/e.sock".into(),
                timeout: Duration::from_millis(500),
                cache: true,
                max_entries: 7,
                stale_if_error: Duration::from_secs(2),
                keepalive_interval: Duration::from_millis(1500),
                connect_timeout: Duration::from_secs(7),
            }
        );
        let given = Builder::default()
            .target("[::1]:1")
            .cache(false)
            .max_entries(3)
            .options_from(&vars)
            .unwrap();
        assert_eq!(given.target, "[::1]:1");
        assert!(!given.cache);
        assert_eq!(given.max_entries, 3);
        assert_eq!(given.timeout, Duration::from_millis(500));
    }

    #[test]
    fn malformed_variables_are_refused_with_their_name() {
        for (key, text) in [
            ("EGRESS_CLIENT_TIMEOUT", "-1"),
            ("EGRESS_CLIENT_TIMEOUT", "soon"),
            ("EGRESS_CLIENT_TIMEOUT", "0"),
            ("EGRESS_CLIENT_CACHE", "maybe"),
            ("EGRESS_CLIENT_MAX_ENTRIES", "0"),
            ("EGRESS_CLIENT_MAX_ENTRIES", "-3"),
            ("EGRESS_CLIENT_STALE_IF_ERROR", "inf"),
            ("EGRESS_CLIENT_KEEPALIVE_INTERVAL", "1h"),
            ("EGRESS_CLIENT_CONNECT_TIMEOUT", "0"),
        ] {
            let lookup = |k: &str| (k == key).then(|| text.to_owned());
            let error = Builder::default().options_from(lookup).unwrap_err();
            assert_eq!(error.code, Code::InvalidArgument, "{key}={text}: {error}");
            assert!(error.message.starts_with(key), "{error}");
            assert!(error.message.contains(&format!("{text:?}")), "{error}");
        }
    }

    #[test]
    fn out_of_range_values_in_code_are_refused_with_the_option_name() {
        let zero = Builder::default()
            .connect_timeout(Duration::ZERO)
            .options_from(env(&[]))
            .unwrap_err();
        assert_eq!(zero.message, "connect_timeout must be more than 0, not 0");
        let none = Builder::default()
            .max_entries(0)
            .options_from(env(&[]))
            .unwrap_err();
        assert_eq!(none.message, "max_entries must be at least 1, not 0");
        let off = Builder::default()
            .stale_if_error(Duration::ZERO)
            .options_from(env(&[("EGRESS_CLIENT_STALE_IF_ERROR", "5s")]))
            .unwrap();
        assert_eq!(off.stale_if_error, Duration::ZERO, "0 in code wins too");
    }

    #[test]
    fn durations_take_seconds_s_or_ms() {
        assert_eq!(parse_seconds("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_seconds("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_seconds("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
        assert!(parse_seconds("-0.5s").is_err());
        assert!(parse_seconds("NaN").is_err());
        assert!(parse_seconds("").is_err());
    }
}
