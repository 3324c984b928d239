//! `Debug` for the messages that can hold secrets. The schema marks
//! `KeySource.key_data` and `VaultKeySource.vault_token` as `debug_redact`;
//! prost ignores that option, so build.rs turns off the derived `Debug` of
//! these types and this module prints `[redacted]` in place of the secrets.

use std::fmt;

use crate::pb::{KeySource, VaultKeySource, key_source::Source};

/// What `Debug` prints instead of a secret.
pub const REDACTED: &str = "[redacted]";

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySource")
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(path) => f.debug_tuple("File").field(path).finish(),
            Source::KeyData(_) => f.debug_tuple("KeyData").field(&REDACTED).finish(),
            Source::Vault(vault) => f.debug_tuple("Vault").field(vault).finish(),
        }
    }
}

impl fmt::Debug for VaultKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultKeySource")
            .field("vault_address", &self.vault_address)
            .field("vault_token", &self.vault_token.as_ref().map(|_| REDACTED))
            .field("vault_mount", &self.vault_mount)
            .field("vault_path", &self.vault_path)
            .field("vault_key", &self.vault_key)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
