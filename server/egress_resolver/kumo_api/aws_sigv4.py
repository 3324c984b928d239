"""AWS Signature Version 4, as kumod's `kumo.crypto.aws_sign_v4` computes it (crates/mod-aws-sigv4).

Written out rather than taken from botocore or requests-aws4auth because
kumod's output is the contract and it differs from theirs in details a
policy can see: the path is encoded once per segment with kumod's own set
of reserved characters (`<>^{|}` and backquote stay as they are), there
is no path normalisation, S3 requests get `x-amz-content-sha256` signed
automatically and nothing else is added besides `x-amz-date` (and
`x-amz-security-token` with a session token), header values are trimmed
with the SigV4 "trimall" rule that keeps quoted runs, and the result also
carries the canonical request and string to sign. Those libraries also
sign a whole HTTP request object, not these fields. HMAC-SHA256 is the
`cryptography` package's; SHA-256 is hashlib's.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib

from cryptography.hazmat.primitives import hashes, hmac

ALGORITHM = "AWS4-HMAC-SHA256"

# Bytes kumod's encoder escapes: controls, space, these, and everything >= 0x80.
_RESERVED = frozenset(b" !\"#$%&'()*+,/:;=?@[]") | frozenset(range(0x20)) | {0x7F}


@dataclasses.dataclass(frozen=True, slots=True)
class SigV4Request:
    access_key: str
    secret_key: str
    region: str
    service: str
    method: str
    uri: str
    query_params: dict[str, str]
    headers: dict[str, str]
    payload: bytes
    timestamp: datetime.datetime
    session_token: str | None = None


class SigV4Error(ValueError):
    """A request that cannot be signed (no `host` header)."""


def uri_encode(text: str) -> str:
    return "".join(
        f"%{byte:02X}" if byte in _RESERVED or byte >= 0x80 else chr(byte) for byte in text.encode()
    )


def canonical_uri(path: str) -> str:
    return "/".join(uri_encode(segment) for segment in path.split("/")) if path else "/"


def canonical_query(params: dict[str, str]) -> str:
    pairs = sorted((uri_encode(k), uri_encode(v)) for k, v in params.items())
    return "&".join(f"{k}={v}" for k, v in pairs)


def trimall(value: str) -> str:
    """Drop leading and trailing blanks and squeeze runs of them, outside double quotes."""
    out: list[str] = []
    in_quotes = pending_space = emitted = False
    for char in value:
        if char == '"':
            if pending_space and emitted:
                out.append(" ")
            pending_space, emitted, in_quotes = False, True, not in_quotes
            out.append(char)
        elif in_quotes:
            out.append(char)
        elif char in " \t":
            pending_space = True
        else:
            if pending_space and emitted:
                out.append(" ")
            pending_space, emitted = False, True
            out.append(char)
    return "".join(out)


def _hmac(key: bytes, data: bytes) -> bytes:
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def signing_key(secret_key: str, date_stamp: str, region: str, service: str) -> bytes:
    key = _hmac(f"AWS4{secret_key}".encode(), date_stamp.encode())
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part.encode())
    return key


def sign(request: SigV4Request) -> dict[str, str]:
    """kumod's result table: authorization, timestamp, signature, canonical_request,
    string_to_sign."""
    moment = request.timestamp.astimezone(datetime.UTC)
    amz_date = (
        f"{moment.year:04d}{moment.month:02d}{moment.day:02d}"
        f"T{moment.hour:02d}{moment.minute:02d}{moment.second:02d}Z"
    )
    date_stamp = amz_date[:8]
    payload_hash = hashlib.sha256(request.payload).hexdigest()

    headers = {name.lower(): value for name, value in sorted(request.headers.items())}
    if "host" not in headers:
        raise SigV4Error("headers must include 'host'")
    headers["x-amz-date"] = amz_date
    if request.session_token is not None:
        headers["x-amz-security-token"] = request.session_token
    if request.service == "s3":
        headers["x-amz-content-sha256"] = payload_hash
    names = sorted(headers)
    canonical_headers = "\n".join(f"{name}:{trimall(headers[name])}" for name in names)
    signed_headers = ";".join(names)

    canonical_request = "\n".join(
        (
            request.method,
            canonical_uri(request.uri),
            canonical_query(request.query_params),
            canonical_headers,
            "",
            signed_headers,
            payload_hash,
        )
    )
    scope = f"{date_stamp}/{request.region}/{request.service}/aws4_request"
    string_to_sign = "\n".join(
        (ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest())
    )
    key = signing_key(request.secret_key, date_stamp, request.region, request.service)
    signature = _hmac(key, string_to_sign.encode()).hex()
    return {
        "authorization": f"{ALGORITHM} Credential={request.access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}",
        "timestamp": amz_date,
        "signature": signature,
        "canonical_request": canonical_request,
        "string_to_sign": string_to_sign,
    }
