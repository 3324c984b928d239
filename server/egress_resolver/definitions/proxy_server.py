"""What a valid proxy address is (a source's HAProxy or SOCKS5 server), and its canonical form.

kumod reads these keys as a `ResolvableSocketAddr`, trying three forms in turn:

- an IP socket address: `IP:port`, `[IPv6]:port` or `[IPv4]:port`, served in
  canonical form (`[2001:DB8::0:1]:25` -> `[2001:db8::1]:25`, `[10.0.0.1]:25`
  -> `10.0.0.1:25`);
- an absolute unix socket path (shorter than the 108 bytes of `sun_path`),
  served as written;
- `host:port`, a DNS name that kumod resolves at connect time: the port is
  required and must fit in 16 bits, the host must be a valid DNS name; served
  as `host:port` with the port in decimal.

Host names follow the rules of kumod's DNS library (hickory's relaxed parser):
dot-separated labels of ASCII letters, digits, `_` and `-` (not first), 1-63
bytes each, 253 in all, an optional final dot; a label with other characters
goes through IDNA (Python's `idna` codec) first, so `bücher.example:25` is
accepted as kumod accepts it. Deliberately stricter than kumod: a host made of
digits and dots must be an IPv4 address (kumod would take `10.0.0.300:25` as
a host name that can never resolve), and wildcard labels (`*`) and the root
name `.` are refused. Messages carry kumod's words for the reason (`missing
:port suffix`, `invalid port "..."`, `invalid hostname "..."`), which
KumoMTA's `policy-extras` helpers look for.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from egress_resolver.definitions.fields import ValidationError, string_field

_PORT = re.compile(r"\+?[0-9]+")
_LABEL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
_DOTTED_DIGITS = re.compile(r"[0-9.]*[0-9][0-9.]*")
_SUN_PATH_BYTES = 108
_MAX_HOST_LENGTH = 253
_MAX_LABEL_LENGTH = 63
_FORMS = "IP:port, [IPv6]:port, host:port or an absolute unix socket path"


def proxy_server_field(params: Mapping[object, object], key: str) -> str:
    """`params[key]` as a proxy server address in canonical form."""
    text = string_field(params, key)
    if text.startswith("/"):
        return _unix_path(key, text)
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise _refused(key, text, "missing :port suffix")
    if not _PORT.fullmatch(port_text) or int(port_text) > 65535:
        raise _refused(key, text, f'invalid port "{port_text}"')
    port = int(port_text)
    if host.startswith("[") and host.endswith("]"):
        return _bracketed(key, text, host[1:-1], port)
    if _DOTTED_DIGITS.fullmatch(host):
        try:
            return f"{ipaddress.IPv4Address(host)}:{port}"
        except ValueError:
            raise ValidationError(
                f"invalid value for `{key}`: '{host}' in '{text}' is not an IP address"
            ) from None
    problem = host_name_problem(host)
    if problem is not None:
        raise _refused(key, text, f'invalid hostname "{host}": {problem}')
    return f"{host}:{port}"


def host_name_problem(host: str) -> str | None:
    """Why `host` is not a DNS name kumod accepts, or None when it is one."""
    if not host:
        return "hostname is empty"
    bad = next((c for c in host if c.isspace() or not c.isprintable()), None)
    if bad is not None:
        return f"unrecognized char: {bad!r}"
    if len(host.rstrip(".")) > _MAX_HOST_LENGTH:
        return f"longer than {_MAX_HOST_LENGTH} characters"
    labels = host.removesuffix(".").split(".")
    for label in labels:
        ascii_label = label
        if not label.isascii():
            try:
                ascii_label = label.encode("idna").decode("ascii")
            except UnicodeError as err:
                return f"label '{label}' is not a valid international name ({err})"
        if not ascii_label:
            return "empty label"
        if len(ascii_label) > _MAX_LABEL_LENGTH:
            return f"label '{label}' is longer than {_MAX_LABEL_LENGTH} bytes"
        if not _LABEL.fullmatch(ascii_label):
            return f"malformed label '{label}'"
    return None


def _bracketed(key: str, text: str, host: str, port: int) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValidationError(
            f"invalid value for `{key}`: '{host}' in '{text}' is not an IP address"
        ) from None
    if isinstance(address, ipaddress.IPv4Address):
        return f"{address}:{port}"
    if address.scope_id is not None and not address.scope_id.isdigit():
        raise ValidationError(
            f"invalid value for `{key}`: the scope of '{host}' in '{text}' must be a number"
        )
    return f"[{address}]:{port}"


def _unix_path(key: str, text: str) -> str:
    if "\0" in text:
        raise ValidationError(f"invalid value for `{key}`: a unix socket path has no NUL bytes")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size >= _SUN_PATH_BYTES:
        raise ValidationError(
            f"invalid value for `{key}`: the unix socket path is {size} bytes long; "
            f"it must be shorter than {_SUN_PATH_BYTES}"
        )
    return text


def _refused(key: str, text: str, reason: str) -> ValidationError:
    return ValidationError(f"invalid value for `{key}`: '{text}' is not {_FORMS} ({reason})")
