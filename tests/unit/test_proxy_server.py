"""ha_proxy_server / socks5_proxy_server: the forms kumod accepts, canonical output."""

import pytest

from egress_resolver.definitions.fields import ValidationError
from egress_resolver.definitions.proxy_server import host_name_problem, proxy_server_field


def served(text: str) -> str:
    return proxy_server_field({"ha_proxy_server": text}, "ha_proxy_server")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("10.0.0.1:5000", "10.0.0.1:5000"),
        ("10.0.0.1:0", "10.0.0.1:0"),
        ("10.0.0.1:65535", "10.0.0.1:65535"),
        ("[10.0.0.1]:25", "10.0.0.1:25"),  # the email world's literal form, as kumod takes it
        ("[2001:db8::1]:1080", "[2001:db8::1]:1080"),
        ("[2001:DB8::0:1]:1080", "[2001:db8::1]:1080"),
        ("[fe80::1%2]:25", "[fe80::1%2]:25"),
        ("proxy.example.com:1080", "proxy.example.com:1080"),
        ("proxy.example.com.:1080", "proxy.example.com.:1080"),
        ("Proxy.Example.COM:1080", "Proxy.Example.COM:1080"),
        ("localhost:1", "localhost:1"),
        ("_socks._tcp.example.com:1080", "_socks._tcp.example.com:1080"),
        ("a-.example:25", "a-.example:25"),
        ("123.example:25", "123.example:25"),
        ("bücher.example:25", "bücher.example:25"),
        ("proxy:+0025", "proxy:25"),  # Rust's u16 parsing
        ("/run/proxy.sock", "/run/proxy.sock"),
        ("/" + "x" * 106, "/" + "x" * 106),
    ],
)
def test_accepted_forms(text: str, canonical: str) -> None:
    assert served(text) == canonical
    assert served(canonical) == canonical


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("proxy.example.com", "(missing :port suffix)"),
        ("10.0.0.1", "(missing :port suffix)"),
        ("proxy.example.com:70000", '(invalid port "70000")'),
        ("proxy.example.com:65536", '(invalid port "65536")'),
        ("proxy.example.com:", '(invalid port "")'),
        ("proxy.example.com:-1", '(invalid port "-1")'),
        ("proxy.example.com:²", '(invalid port "²")'),
        ("[::1]", '(invalid port "1]")'),
        ("bad_host!:25", "(invalid hostname \"bad_host!\": malformed label 'bad_host!')"),
        ("I have spaces:25", "(invalid hostname \"I have spaces\": unrecognized char: ' ')"),
        ("::1:100", "(invalid hostname \"::1\": malformed label '::1')"),
        ("-proxy.example:25", "(invalid hostname \"-proxy.example\": malformed label '-proxy')"),
        ("a..b:25", '(invalid hostname "a..b": empty label)'),
        (".:25", '(invalid hostname ".": empty label)'),
        ("*.example.com:25", "malformed label '*'"),
        (":25", '(invalid hostname "": hostname is empty)'),
        ("x" * 64 + ".example:25", "is longer than 63 bytes"),
        ("relative/path:25", "malformed label 'relative/path'"),
        ("relative/path", "(missing :port suffix)"),
    ],
)
def test_refused_forms_say_why_in_kumods_words(text: str, reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        served(text)
    message = str(err.value)
    assert message.startswith(f"invalid value for `ha_proxy_server`: '{text}' is not IP:port, ")
    assert reason in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.0.0.300:5000", "'10.0.0.300' in '10.0.0.300:5000' is not an IP address"),
        ("010.0.0.1:5000", "'010.0.0.1' in '010.0.0.1:5000' is not an IP address"),
        ("[10.0.0.300]:5000", "'10.0.0.300' in '[10.0.0.300]:5000' is not an IP address"),
        ("[example.com]:5000", "'example.com' in '[example.com]:5000' is not an IP address"),
        (
            "[fe80::1%eth0]:25",
            "the scope of 'fe80::1%eth0' in '[fe80::1%eth0]:25' must be a number",
        ),
        ("/" + "x" * 107, "the unix socket path is 108 bytes long; it must be shorter than 108"),
        ("/run/a\0b", "a unix socket path has no NUL bytes"),
    ],
)
def test_refused_addresses_and_paths(text: str, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        served(text)
    assert str(err.value) == f"invalid value for `ha_proxy_server`: {message}"


def test_wrong_type() -> None:
    with pytest.raises(ValidationError, match="invalid type for `socks5_proxy_server`: integer"):
        proxy_server_field({"socks5_proxy_server": 1080}, "socks5_proxy_server")


def test_host_name_length() -> None:
    label = "a" * 63
    longest = ".".join([label, label, label, "a" * 61])  # 253 characters
    assert host_name_problem(longest) is None
    assert host_name_problem(longest + ".") is None
    assert host_name_problem(longest + "a") == "longer than 253 characters"
