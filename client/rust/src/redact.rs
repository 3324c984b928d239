//! `Debug` for the messages that can hold secrets. The schema marks fields
//! `debug_redact` (`KeySource.key_data` and `VaultKeySource.vault_token`
//! today); prost ignores that option, so build.rs turns off the derived
//! `Debug` of the messages that have such a field and writes theirs from the
//! schema, printing `[redacted]` in place of the secrets; it is included here.

/// What `Debug` prints instead of a secret.
pub const REDACTED: &str = "[redacted]";

include!(concat!(env!("OUT_DIR"), "/kumo.egress.v1.debug.rs"));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::{KeySource, VaultKeySource, key_source::Source};

    #[test]
    fn inline_key_data_is_not_printed() {
        let key = KeySource {
            source: Some(Source::KeyData("hunter2".into())),
        };
        let printed = format!("{key:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains(REDACTED), "{printed}");
    }

    #[test]
    fn vault_token_is_not_printed_but_the_path_is() {
        let key = KeySource {
            source: Some(Source::Vault(VaultKeySource {
                vault_token: Some("s.secret".into()),
                vault_mount: "kv".into(),
                vault_path: "mta/socks".into(),
                ..Default::default()
            })),
        };
        let printed = format!("{key:#?}");
        assert!(!printed.contains("s.secret"), "{printed}");
        assert!(printed.contains("mta/socks"), "{printed}");
    }
}
