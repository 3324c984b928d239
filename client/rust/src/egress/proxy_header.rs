//! The HAProxy PROXY protocol v2 header kumod sends before any other byte
//! (<https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>, section 2.2).
//!
//! Hand-written rather than taken from the `ppp` crate kumod uses: the header
//! kumod builds is fixed (PROXY command, TCP, no TLVs), 28 or 52 bytes laid
//! out below, and one more dependency would buy nothing over these lines.

use std::net::{IpAddr, SocketAddr};

/// The 12-byte signature every v2 header starts with.
pub(crate) const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The header saying that `source` (port 0) connects to `destination`; `None`
/// when the two are of different families (kumod refuses those too).
pub(crate) fn header(source: IpAddr, destination: SocketAddr) -> Option<Vec<u8>> {
    let (family, addresses): (u8, Vec<u8>) = match (source, destination.ip()) {
        (IpAddr::V4(from), IpAddr::V4(to)) => (0x11, [from.octets(), to.octets()].concat()),
        (IpAddr::V6(from), IpAddr::V6(to)) => (0x21, [from.octets(), to.octets()].concat()),
        _ => return None,
    };
    let length = u16::try_from(addresses.len() + 4).expect("12 or 36 bytes");
    let mut header = Vec::with_capacity(16 + usize::from(length));
    header.extend_from_slice(&SIGNATURE);
    header.push(0x21); // version 2, command PROXY
    header.push(family); // TCP over IPv4 (0x11) or IPv6 (0x21)
    header.extend_from_slice(&length.to_be_bytes());
    header.extend_from_slice(&addresses);
    header.extend_from_slice(&0u16.to_be_bytes()); // source port
    header.extend_from_slice(&destination.port().to_be_bytes());
    Some(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_is_28_bytes_as_ppp_builds_it() {
        let bytes = header(
            "10.0.0.2".parse().unwrap(),
            "192.0.2.25:2525".parse().unwrap(),
        );
        let mut expected = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
        expected.extend_from_slice(&[10, 0, 0, 2, 192, 0, 2, 25, 0, 0, 0x09, 0xdd]);
        assert_eq!(bytes.unwrap(), expected);
    }

    #[test]
    fn ipv6_header_is_52_bytes_and_mixed_families_have_none() {
        let bytes = header("2001:db8::2".parse().unwrap(), "[::1]:25".parse().unwrap()).unwrap();
        assert_eq!(bytes.len(), 52);
        assert_eq!(bytes[12..16], [0x21, 0x21, 0, 36]);
        assert_eq!(bytes[48..], [0, 0, 0, 25]);
        assert!(header("10.0.0.2".parse().unwrap(), "[::1]:25".parse().unwrap()).is_none());
    }
}
