//! kumod's side of a SOCKS5 exchange (RFC 1928, RFC 1929 for the password):
//! greeting, authentication, BIND of the address the proxy should connect
//! from, then CONNECT to the destination, every reply read in full.
//!
//! Hand-written: kumod's exchange sends BIND and then CONNECT on the same
//! connection to have the proxy connect from a given address, which general
//! SOCKS5 client crates do not do (they send one CONNECT).

use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::pb::KeySource;
use crate::pb::key_source::Source;

const VERSION: u8 = 5;
const NO_AUTH: u8 = 0x00;
const USERNAME_PASSWORD: u8 = 0x02;
const CONNECT: u8 = 0x01;
const BIND: u8 = 0x02;

/// What the exchange asks of the proxy.
pub(crate) struct Request<'a> {
    /// The address the proxy binds before connecting onwards.
    pub(crate) bind: IpAddr,
    /// Where the proxy connects to.
    pub(crate) destination: SocketAddr,
    /// `socks5_proxy_username` and the KeySource of its password.
    pub(crate) credentials: Option<(&'a str, &'a KeySource)>,
}

/// Why the exchange failed (every failure is the proxy's: PROXY_UNHEALTHY).
pub(crate) type Refusal = String;

fn refused(cause: impl Into<String>) -> Refusal {
    cause.into()
}

fn io(doing: &str) -> impl Fn(std::io::Error) -> Refusal + '_ {
    move |err| refused(format!("{doing}: {err}"))
}

/// Runs the exchange on `stream`, already connected to the proxy.
pub(crate) async fn handshake<S>(stream: &mut S, request: &Request<'_>) -> Result<(), Refusal>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut greeting = vec![VERSION, 1, NO_AUTH];
    if request.credentials.is_some() {
        greeting[1] = 2;
        greeting.push(USERNAME_PASSWORD);
    }
    stream
        .write_all(&greeting)
        .await
        .map_err(io("sending the SOCKS5 greeting"))?;
    let mut choice = [0u8; 2];
    stream
        .read_exact(&mut choice)
        .await
        .map_err(io("reading the SOCKS5 method"))?;
    match (choice, request.credentials) {
        ([VERSION, NO_AUTH], _) => {}
        ([VERSION, USERNAME_PASSWORD], Some((user, key))) => {
            authenticate(stream, user, key).await?
        }
        _ => {
            return Err(refused(format!(
                "the proxy chose SOCKS5 method {choice:02x?}, which was not offered"
            )));
        }
    }
    let bind = SocketAddr::new(request.bind, 0);
    send(stream, BIND, bind).await?;
    let reply = read_reply(stream).await?;
    if reply != 0 {
        return Err(format!(
            "the proxy server failed to bind {}: {}",
            request.bind,
            meaning(reply)
        ));
    }
    send(stream, CONNECT, request.destination).await?;
    match read_reply(stream).await? {
        0 => Ok(()),
        reply => Err(refused(format!(
            "the proxy server failed to connect {} -> {}: {}",
            request.bind,
            request.destination,
            meaning(reply)
        ))),
    }
}

/// RFC 1929: `01 ULEN USER PLEN PASS`, answered `01 00` when accepted.
async fn authenticate<S>(stream: &mut S, user: &str, key: &KeySource) -> Result<(), Refusal>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let password = password(key)?;
    let (Ok(user_len), Ok(password_len)) = (u8::try_from(user.len()), u8::try_from(password.len()))
    else {
        return Err(refused(
            "the SOCKS5 username and password must be at most 255 bytes each",
        ));
    };
    let mut message = vec![1, user_len];
    message.extend_from_slice(user.as_bytes());
    message.push(password_len);
    message.extend_from_slice(&password);
    stream
        .write_all(&message)
        .await
        .map_err(io("sending the SOCKS5 username/password"))?;
    let mut answer = [0u8; 2];
    stream
        .read_exact(&mut answer)
        .await
        .map_err(io("reading the SOCKS5 authentication answer"))?;
    match answer {
        [1, 0] => Ok(()),
        _ => Err(refused("SOCKS5 username/password was incorrect")),
    }
}

/// The password a KeySource holds: inline, or a file read now.
pub(crate) fn password(key: &KeySource) -> Result<Vec<u8>, Refusal> {
    match &key.source {
        Some(Source::KeyData(data)) => Ok(data.as_bytes().to_vec()),
        Some(Source::File(path)) => std::fs::read(path).map_err(|err| {
            refused(format!(
                "cannot read the socks5_proxy_password file {path}: {err}"
            ))
        }),
        Some(Source::Vault(_)) => Err(refused(
            "vault KeySource is not supported by the egress-resolver clients; use key_data or a file",
        )),
        None => Err(refused("socks5_proxy_password is an empty KeySource")),
    }
}

/// `05 CMD 00 ATYP ADDR PORT`.
async fn send<S>(stream: &mut S, command: u8, address: SocketAddr) -> Result<(), Refusal>
where
    S: AsyncWrite + Unpin,
{
    let mut message = vec![VERSION, command, 0];
    match address.ip() {
        IpAddr::V4(ip) => {
            message.push(1);
            message.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            message.push(4);
            message.extend_from_slice(&ip.octets());
        }
    }
    message.extend_from_slice(&address.port().to_be_bytes());
    let doing = if command == BIND { "BIND" } else { "CONNECT" };
    stream
        .write_all(&message)
        .await
        .map_err(|err| refused(format!("sending the SOCKS5 {doing} request: {err}")))
}

/// Reads one reply `05 REP 00 ATYP BND.ADDR BND.PORT` in full: its REP.
async fn read_reply<S>(stream: &mut S) -> Result<u8, Refusal>
where
    S: AsyncRead + Unpin,
{
    let reading = io("reading a SOCKS5 reply");
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).await.map_err(&reading)?;
    if head[0] != VERSION {
        return Err(refused(format!("a SOCKS5 reply of version {}", head[0])));
    }
    let address_len = match head[3] {
        1 => 4,
        4 => 16,
        3 => usize::from(stream.read_u8().await.map_err(&reading)?),
        other => return Err(refused(format!("a SOCKS5 reply of address type {other}"))),
    };
    let mut rest = vec![0u8; address_len + 2];
    stream.read_exact(&mut rest).await.map_err(&reading)?;
    Ok(head[1])
}

/// RFC 1928's words for a reply code.
fn meaning(reply: u8) -> String {
    let text = match reply {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unassigned reply code",
    };
    format!("reply {reply} ({text})")
}
