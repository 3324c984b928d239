//! This host's name, the EHLO name of a source without `ehlo_domain` (as
//! kumod says its own host name). Read once; `localhost` if it cannot be.

use std::sync::OnceLock;

/// The host name, read on first use.
pub(crate) fn get() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| read().unwrap_or_else(|| "localhost".to_owned()))
}

#[cfg(unix)]
fn read() -> Option<String> {
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname writes at most buffer.len() bytes into buffer,
    // which lives for the call.
    let status = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if status != 0 {
        return None;
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    let name = String::from_utf8_lossy(&buffer[..end]).into_owned();
    (!name.is_empty()).then_some(name)
}

#[cfg(not(unix))]
fn read() -> Option<String> {
    std::env::var("COMPUTERNAME")
        .ok()
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_host_name_is_the_kernels() {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname");
        if let Ok(kernel) = kernel {
            assert_eq!(super::get(), kernel.trim());
        }
        assert!(!super::get().is_empty());
    }
}
