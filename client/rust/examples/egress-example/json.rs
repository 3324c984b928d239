//! Messages as protobuf JSON, derived from the schema: build.rs writes the
//! FileDescriptorSet of `kumo.egress.v1`, and prost-reflect prints a message
//! by its descriptor: proto field names in field-number order, unset fields
//! omitted, durations as strings ("90s", "1.500s"), a oneof by its case's
//! name (`"immediate": {}`). Every field the schema marks
//! `[debug_redact = true]` prints `[redacted]` in place of its value; which
//! fields those are is read from the descriptors, so a field added to the
//! schema, secret or not, needs no change here. Separators are `", "` and
//! `": "`, so a source's line matches `egress-resolver resolve` byte for byte.

use std::io;
use std::sync::LazyLock;

use egress_client::{EgressPool, EgressSource, REDACTED};
use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage,
    SerializeOptions, Value,
};
use serde_json::ser::Formatter;

/// The schema, as build.rs encoded it (options included).
static SCHEMA: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(&include_bytes!(concat!(env!("OUT_DIR"), "/kumo.egress.v1.fds.bin"))[..])
        .expect("build.rs writes a valid FileDescriptorSet")
});

/// The descriptor of the message named `full_name` in the schema.
pub(crate) fn descriptor(full_name: &str) -> MessageDescriptor {
    SCHEMA
        .get_message_by_name(full_name)
        .unwrap_or_else(|| panic!("the schema has no message {full_name}"))
}

/// `source` as one line of JSON, its secrets redacted.
pub(crate) fn source_json(source: &EgressSource) -> String {
    message_json(source, "kumo.egress.v1.EgressSource", true)
}

/// `pool` as one line of JSON with every field, even a 0 weight.
pub(crate) fn pool_json(pool: &EgressPool) -> String {
    message_json(pool, "kumo.egress.v1.EgressPool", false)
}

/// `message` (of the schema's type `full_name`) as one line of protobuf JSON
/// with the proto field names and its `debug_redact` fields redacted;
/// `skip_defaults`: fields without presence that hold their default are left out.
pub(crate) fn message_json(message: &impl Message, full_name: &str, skip_defaults: bool) -> String {
    let mut dynamic =
        DynamicMessage::decode(descriptor(full_name), message.encode_to_vec().as_slice())
            .expect("a message of the schema's type decodes by its descriptor");
    redact(&mut dynamic);
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(skip_defaults);
    let mut line = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut line, Spaced);
    dynamic
        .serialize_with_options(&mut serializer, &options)
        .expect("a decoded message serializes");
    String::from_utf8(line).expect("serde_json writes UTF-8")
}

/// True when the schema marks `field` with `debug_redact = true`.
pub(crate) fn is_redacted(field: &FieldDescriptor) -> bool {
    field
        .options()
        .get_field_by_name("debug_redact")
        .is_some_and(|value| value.as_bool() == Some(true))
}

/// The full names of the `debug_redact` fields of `message` and of every
/// message it holds, sorted (what `redact` replaces).
#[cfg(test)]
pub(crate) fn redacted_fields(message: &MessageDescriptor) -> Vec<String> {
    fn visit(message: &MessageDescriptor, seen: &mut Vec<String>, found: &mut Vec<String>) {
        if seen.iter().any(|name| name == message.full_name()) {
            return;
        }
        seen.push(message.full_name().to_owned());
        for field in message.fields() {
            if is_redacted(&field) {
                found.push(field.full_name().to_owned());
            } else if let Kind::Message(inner) = field.kind() {
                visit(&inner, seen, found);
            }
        }
    }
    let mut found = Vec::new();
    visit(message, &mut Vec::new(), &mut found);
    found.sort();
    found
}

/// Replaces, in place and at any depth, the value of every set
/// `debug_redact` field: a string by `[redacted]`; any other kind (none
/// in the schema today) is cleared, so that it is not printed either.
fn redact(message: &mut DynamicMessage) {
    for field in message.descriptor().fields() {
        if !message.has_field(&field) {
            continue;
        }
        if is_redacted(&field) {
            if field.kind() == Kind::String && !field.is_list() && !field.is_map() {
                message.set_field(&field, Value::String(REDACTED.to_owned()));
            } else {
                message.clear_field(&field);
            }
            continue;
        }
        match message.get_field_mut(&field) {
            Value::Message(inner) => redact(inner),
            Value::List(items) => items.iter_mut().for_each(redact_value),
            Value::Map(entries) => entries.values_mut().for_each(redact_value),
            _ => {}
        }
    }
}

fn redact_value(value: &mut Value) {
    if let Value::Message(inner) = value {
        redact(inner);
    }
}

/// serde_json's compact output with `", "` and `": "` as separators.
struct Spaced;

impl Formatter for Spaced {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egress_client::{
        EgressPoolEntry, KeySource, SuspendOnFailure, VaultKeySource, key_source::Source,
        suspend_on_failure::Trigger,
    };
    use prost_types::Duration;

    const SENTINEL: &str = "sentinel-secret-value";

    fn source_descriptor() -> MessageDescriptor {
        descriptor("kumo.egress.v1.EgressSource")
    }

    /// Every `debug_redact` field of the schema's files, found by scanning
    /// the raw FieldOptions of every message (not by `redacted_fields`).
    fn debug_redact_fields_of_the_schema() -> Vec<String> {
        let mut found: Vec<String> = SCHEMA
            .all_messages()
            .filter(|message| message.package_name() == "kumo.egress.v1")
            .flat_map(|message| message.fields().collect::<Vec<_>>())
            .filter(|field| {
                let options = field.options();
                options
                    .get_field_by_name("debug_redact")
                    .and_then(|v| v.as_bool())
                    == Some(true)
            })
            .map(|field| field.full_name().to_owned())
            .collect();
        found.sort();
        found
    }

    /// Every path of singular fields from `message` down to a string field.
    fn string_paths(
        message: &MessageDescriptor,
        prefix: &[FieldDescriptor],
    ) -> Vec<Vec<FieldDescriptor>> {
        let mut paths = Vec::new();
        for field in message.fields() {
            if field.is_list() || field.is_map() {
                continue;
            }
            let mut path = prefix.to_vec();
            path.push(field.clone());
            match field.kind() {
                Kind::String => paths.push(path),
                Kind::Message(inner) if !prefix.iter().any(|f| *f.parent_message() == inner) => {
                    paths.extend(string_paths(&inner, &path));
                }
                _ => {}
            }
        }
        paths
    }

    /// An EgressSource with the field at the end of `path` set to `value`.
    fn source_with(path: &[FieldDescriptor], value: &str) -> EgressSource {
        let mut root = DynamicMessage::new(source_descriptor());
        root.set_field_by_name("name", Value::String("a".into()));
        let mut message = &mut root;
        for field in &path[..path.len() - 1] {
            message = match message.get_field_mut(field) {
                Value::Message(inner) => inner,
                other => panic!("{} holds {other:?}", field.full_name()),
            };
        }
        message.set_field(&path[path.len() - 1], Value::String(value.into()));
        root.transcode_to().expect("an EgressSource")
    }

    fn at<'a>(printed: &'a serde_json::Value, path: &[FieldDescriptor]) -> &'a serde_json::Value {
        path.iter()
            .fold(printed, |value, field| &value[field.name()])
    }

    #[test]
    fn the_redacted_fields_are_the_schemas_debug_redact_fields() {
        let found = redacted_fields(&source_descriptor());
        assert_eq!(found, debug_redact_fields_of_the_schema());
        assert_eq!(
            found,
            [
                "kumo.egress.v1.KeySource.key_data",
                "kumo.egress.v1.VaultKeySource.vault_token"
            ]
        );
    }

    #[test]
    fn each_string_field_prints_its_value_unless_the_schema_marks_it() {
        let secrets = debug_redact_fields_of_the_schema();
        let paths = string_paths(&source_descriptor(), &[]);
        for secret in &secrets {
            assert!(
                paths
                    .iter()
                    .any(|path| path[path.len() - 1].full_name() == secret),
                "{secret} is not reached from EgressSource"
            );
        }
        for path in &paths {
            let line = source_json(&source_with(path, SENTINEL));
            let printed: serde_json::Value = serde_json::from_str(&line).unwrap();
            let last = &path[path.len() - 1];
            if secrets.iter().any(|secret| secret == last.full_name()) {
                assert_eq!(at(&printed, path), REDACTED, "{line}");
                assert!(!line.contains(SENTINEL), "{line}");
            } else {
                assert_eq!(at(&printed, path), SENTINEL, "{line}");
            }
        }
    }

    #[test]
    fn an_inline_password_and_a_vault_token_print_redacted() {
        let inline = EgressSource {
            name: "inline".into(),
            socks5_proxy_password: Some(KeySource {
                source: Some(Source::KeyData("hunter2".into())),
            }),
            ..Default::default()
        };
        assert_eq!(
            source_json(&inline),
            r#"{"name": "inline", "socks5_proxy_password": {"key_data": "[redacted]"}}"#
        );
        let vault = VaultKeySource {
            vault_token: Some("s.secret".into()),
            vault_mount: "kv".into(),
            vault_path: "mta".into(),
            ..Default::default()
        };
        let vaulted = EgressSource {
            socks5_proxy_password: Some(KeySource {
                source: Some(Source::Vault(vault)),
            }),
            ..Default::default()
        };
        assert_eq!(
            source_json(&vaulted),
            r#"{"socks5_proxy_password": {"vault": {"vault_token": "[redacted]", "vault_mount": "kv", "vault_path": "mta"}}}"#
        );
    }

    #[test]
    fn durations_use_protobuf_json_precision() {
        let ttl = |seconds, nanos| {
            let source = EgressSource {
                ttl: Some(Duration { seconds, nanos }),
                ..Default::default()
            };
            source_json(&source)
        };
        assert_eq!(ttl(90, 0), r#"{"ttl": "90s"}"#);
        assert_eq!(ttl(0, 0), r#"{"ttl": "0s"}"#);
        assert_eq!(ttl(1, 500_000_000), r#"{"ttl": "1.500s"}"#);
        assert_eq!(ttl(0, 1_000), r#"{"ttl": "0.000001s"}"#);
        assert_eq!(ttl(3, 7), r#"{"ttl": "3.000000007s"}"#);
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
    fn a_pool_prints_every_weight_even_zero() {
        let pool = EgressPool {
            name: "p".into(),
            entries: vec![
                EgressPoolEntry {
                    name: "a".into(),
                    weight: 0,
                },
                EgressPoolEntry {
                    name: "b".into(),
                    weight: 2,
                },
            ],
            ttl: Some(Duration {
                seconds: 120,
                nanos: 0,
            }),
        };
        assert_eq!(
            pool_json(&pool),
            concat!(
                r#"{"name": "p", "entries": [{"name": "a", "weight": 0}, "#,
                r#"{"name": "b", "weight": 2}], "ttl": "120s"}"#
            )
        );
    }
}
