//! An [`EgressSource`] as protobuf JSON: proto field names in field-number
//! order, unset fields omitted, durations as strings ("90s", "1.500s"), a
//! oneof by its case's name (`"immediate": {}`) and every secret replaced by
//! `[redacted]`. Separators are
//! `", "` and `": "`, so the line matches `egress-resolver resolve` byte for byte.

use std::fmt;

use egress_client::{
    EgressSource, KeySource, REDACTED, SuspendOnFailure, VaultKeySource, key_source::Source,
    suspend_on_failure::Trigger,
};

/// A JSON value whose objects keep the order their fields were added in.
enum Json {
    String(String),
    Number(u32),
    Object(Vec<(&'static str, Json)>),
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::String(text) => write!(f, "{}", serde_json::Value::from(text.as_str())),
            Json::Number(number) => write!(f, "{number}"),
            Json::Object(fields) => {
                f.write_str("{")?;
                for (index, (key, value)) in fields.iter().enumerate() {
                    let separator = if index == 0 { "" } else { ", " };
                    write!(f, "{separator}\"{key}\": {value}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Collects the fields of one JSON object, skipping unset ones.
#[derive(Default)]
struct Fields(Vec<(&'static str, Json)>);

impl Fields {
    fn string(&mut self, key: &'static str, value: Option<&str>) -> &mut Self {
        if let Some(text) = value {
            self.0.push((key, Json::String(text.to_owned())));
        }
        self
    }

    /// A proto3 string without `optional`: omitted when empty, as protobuf JSON does.
    fn plain_string(&mut self, key: &'static str, value: &str) -> &mut Self {
        self.string(key, Some(value).filter(|text| !text.is_empty()))
    }

    fn number(&mut self, key: &'static str, value: Option<u32>) -> &mut Self {
        if let Some(number) = value {
            self.0.push((key, Json::Number(number)));
        }
        self
    }

    fn object(&mut self, key: &'static str, value: Option<Json>) -> &mut Self {
        if let Some(object) = value {
            self.0.push((key, object));
        }
        self
    }

    fn build(&mut self) -> Json {
        Json::Object(std::mem::take(&mut self.0))
    }
}

/// `source` as one line of JSON.
pub(crate) fn source_json(source: &EgressSource) -> String {
    Fields::default()
        .plain_string("name", &source.name)
        .string("source_address", source.source_address.as_deref())
        .string("ehlo_domain", source.ehlo_domain.as_deref())
        .number("remote_port", source.remote_port)
        .string("ha_proxy_server", source.ha_proxy_server.as_deref())
        .string(
            "ha_proxy_source_address",
            source.ha_proxy_source_address.as_deref(),
        )
        .string("ttl", source.ttl.as_ref().map(duration_json).as_deref())
        .string("socks5_proxy_server", source.socks5_proxy_server.as_deref())
        .string(
            "socks5_proxy_source_address",
            source.socks5_proxy_source_address.as_deref(),
        )
        .string(
            "socks5_proxy_username",
            source.socks5_proxy_username.as_deref(),
        )
        .object(
            "socks5_proxy_password",
            source.socks5_proxy_password.as_ref().map(key_source_json),
        )
        .object(
            "suspend_when_unplumbed",
            source.suspend_when_unplumbed.as_ref().map(suspend_json),
        )
        .object(
            "suspend_when_proxy_unhealthy",
            source
                .suspend_when_proxy_unhealthy
                .as_ref()
                .map(suspend_json),
        )
        .build()
        .to_string()
}

fn suspend_json(rule: &SuspendOnFailure) -> Json {
    let mut fields = Fields::default();
    match &rule.trigger {
        Some(Trigger::Immediate(())) => fields.object("immediate", Some(Json::Object(Vec::new()))),
        Some(Trigger::Threshold(spec)) => fields.string("threshold", Some(spec)),
        None => &mut fields,
    };
    fields
        .string(
            "duration",
            rule.duration.as_ref().map(duration_json).as_deref(),
        )
        .build()
}

fn key_source_json(key: &KeySource) -> Json {
    let mut fields = Fields::default();
    match &key.source {
        Some(Source::File(path)) => fields.string("file", Some(path)),
        Some(Source::KeyData(_)) => fields.string("key_data", Some(REDACTED)),
        Some(Source::Vault(vault)) => fields.object("vault", Some(vault_json(vault))),
        None => &mut fields,
    };
    fields.build()
}

fn vault_json(vault: &VaultKeySource) -> Json {
    Fields::default()
        .string("vault_address", vault.vault_address.as_deref())
        .string("vault_token", vault.vault_token.as_ref().map(|_| REDACTED))
        .plain_string("vault_mount", &vault.vault_mount)
        .plain_string("vault_path", &vault.vault_path)
        .string("vault_key", vault.vault_key.as_deref())
        .build()
}

/// A `google.protobuf.Duration` in protobuf JSON: seconds with 0, 3, 6 or 9
/// fractional digits and an `s` suffix, e.g. "90s", "1.500s", "-0.000001s".
fn duration_json(duration: &prost_types::Duration) -> String {
    let sign = if duration.seconds < 0 || duration.nanos < 0 {
        "-"
    } else {
        ""
    };
    let seconds = duration.seconds.unsigned_abs();
    let nanos = duration.nanos.unsigned_abs();
    if nanos == 0 {
        format!("{sign}{seconds}s")
    } else if nanos.is_multiple_of(1_000_000) {
        format!("{sign}{seconds}.{:03}s", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!("{sign}{seconds}.{:06}s", nanos / 1_000)
    } else {
        format!("{sign}{seconds}.{nanos:09}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::Duration;

    fn duration(seconds: i64, nanos: i32) -> String {
        duration_json(&Duration { seconds, nanos })
    }

    #[test]
    fn durations_use_protobuf_json_precision() {
        assert_eq!(duration(90, 0), "90s");
        assert_eq!(duration(0, 0), "0s");
        assert_eq!(duration(1, 500_000_000), "1.500s");
        assert_eq!(duration(0, 1_000), "0.000001s");
        assert_eq!(duration(3, 7), "3.000000007s");
        assert_eq!(duration(-1, -500_000_000), "-1.500s");
        assert_eq!(duration(0, -250_000_000), "-0.250s");
    }

    #[test]
    fn unset_fields_are_omitted_and_order_follows_the_schema() {
        let source = EgressSource {
            name: "a \"quoted\" name".into(),
            remote_port: Some(25),
            ttl: Some(Duration {
                seconds: 60,
                nanos: 0,
            }),
            ..Default::default()
        };
        assert_eq!(
            source_json(&source),
            r#"{"name": "a \"quoted\" name", "remote_port": 25, "ttl": "60s"}"#
        );
    }

    #[test]
    fn suspend_rules_print_their_trigger_case_and_duration() {
        let source = EgressSource {
            name: "suspending".into(),
            suspend_when_unplumbed: Some(SuspendOnFailure {
                trigger: Some(Trigger::Immediate(())),
                duration: Some(Duration {
                    seconds: 300,
                    nanos: 0,
                }),
            }),
            suspend_when_proxy_unhealthy: Some(SuspendOnFailure {
                trigger: Some(Trigger::Threshold("local:1000/h,max_burst=5".into())),
                duration: Some(Duration {
                    seconds: 1,
                    nanos: 500_000_000,
                }),
            }),
            ..Default::default()
        };
        assert_eq!(
            source_json(&source),
            concat!(
                r#"{"name": "suspending", "#,
                r#""suspend_when_unplumbed": {"immediate": {}, "duration": "300s"}, "#,
                r#""suspend_when_proxy_unhealthy": {"threshold": "local:1000/h,max_burst=5", "#,
                r#""duration": "1.500s"}}"#
            )
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let vault = VaultKeySource {
            vault_token: Some("s.secret".into()),
            vault_mount: "kv".into(),
            vault_path: "mta".into(),
            ..Default::default()
        };
        let source = EgressSource {
            socks5_proxy_password: Some(KeySource {
                source: Some(Source::Vault(vault)),
            }),
            ..Default::default()
        };
        assert_eq!(
            source_json(&source),
            r#"{"socks5_proxy_password": {"vault": {"vault_token": "[redacted]", "vault_mount": "kv", "vault_path": "mta"}}}"#
        );
    }
}
