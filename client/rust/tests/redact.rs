//! `Debug` of the generated messages never prints a field the schema marks
//! `debug_redact`. The secrets are found here in the schema's descriptors
//! (the FileDescriptorSet build.rs writes), not by name: each string field
//! reachable from EgressSource is set to a sentinel, and `{:?}` must print
//! `[redacted]` instead of it exactly when the schema marks the field.

use egress_client::{EgressSource, REDACTED};
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value,
};

const SENTINEL: &str = "sentinel-secret-value";

fn schema() -> DescriptorPool {
    DescriptorPool::decode(&include_bytes!(concat!(env!("OUT_DIR"), "/kumo.egress.v1.fds.bin"))[..])
        .unwrap()
}

fn is_debug_redact(field: &FieldDescriptor) -> bool {
    field
        .options()
        .get_field_by_name("debug_redact")
        .and_then(|v| v.as_bool())
        == Some(true)
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
fn source_with(root: MessageDescriptor, path: &[FieldDescriptor], value: &str) -> EgressSource {
    let mut source = DynamicMessage::new(root);
    let mut message = &mut source;
    for field in &path[..path.len() - 1] {
        message = match message.get_field_mut(field) {
            Value::Message(inner) => inner,
            other => panic!("{} holds {other:?}", field.full_name()),
        };
    }
    message.set_field(&path[path.len() - 1], Value::String(value.into()));
    source.transcode_to().unwrap()
}

#[test]
fn debug_prints_redacted_for_exactly_the_debug_redact_fields() {
    let pool = schema();
    let root = pool
        .get_message_by_name("kumo.egress.v1.EgressSource")
        .unwrap();
    let paths = string_paths(&root, &[]);
    let secrets: Vec<String> = paths
        .iter()
        .map(|path| &path[path.len() - 1])
        .filter(|field| is_debug_redact(field))
        .map(|field| field.full_name().to_owned())
        .collect();
    // The schema has secrets, so this test checks something.
    assert_eq!(
        secrets,
        [
            "kumo.egress.v1.KeySource.key_data",
            "kumo.egress.v1.VaultKeySource.vault_token"
        ]
    );
    for path in &paths {
        let printed = format!("{:?}", source_with(root.clone(), path, SENTINEL));
        let field = &path[path.len() - 1];
        if is_debug_redact(field) {
            assert!(
                !printed.contains(SENTINEL),
                "{}: {printed}",
                field.full_name()
            );
            assert!(
                printed.contains(REDACTED),
                "{}: {printed}",
                field.full_name()
            );
        } else {
            assert!(
                printed.contains(SENTINEL),
                "{}: {printed}",
                field.full_name()
            );
        }
    }
}

#[test]
fn every_debug_redact_field_of_the_schema_is_reached_from_egress_source() {
    let pool = schema();
    let root = pool
        .get_message_by_name("kumo.egress.v1.EgressSource")
        .unwrap();
    let reached: Vec<String> = string_paths(&root, &[])
        .iter()
        .map(|path| path[path.len() - 1].full_name().to_owned())
        .collect();
    for message in pool
        .all_messages()
        .filter(|m| m.package_name() == "kumo.egress.v1")
    {
        for field in message.fields().filter(is_debug_redact) {
            assert!(
                reached.contains(&field.full_name().to_owned()),
                "{}",
                field.full_name()
            );
        }
    }
}
