"""kumo.cidr's map (crates/cidr-map): IP address keys, CIDR blocks, kumod's parser.

Keys are parsed as kumod parses them (the `cidr` crate): an address is a
host block (`10.0.0.1` is `10.0.0.1/32`), `ADDR/LEN` must have its host
bits zero (`10.0.0.1/24` is an error that suggests `10.0.0.0/24`), `any`
covers both families, and short IPv4 forms (`10`, `192.168`, `10/8`) fill
in zero octets. A key that does not parse is tried as `IP:PORT`, `[IP]` or
`[IP]:PORT`. IPv4 and IPv6 are separate: `::ffff:10.0.0.1` is not in
`10.0.0.0/8`.

The entries live in a radix tree (py-radix, C). kumod's map is a tree in
which assigning a block replaces everything inside it: so a lookup finds the
value of the most recent assignment whose block holds the address. Here
assigning a block removes the entries inside it from the tree, and a lookup
is a longest-prefix search: the same answers. Looking up a block looks up
its first address, as kumod does.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import radix

from egress_resolver.kumo_api.maps import LuaMap, MapError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ANY = "any"
_VALUE = "v"  # the key of a radix node's data that holds its value
_EVERYTHING = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


class CidrError(MapError):
    """A key that is not an address, block, `any`, or address with a port."""


def _rust_u8(text: str) -> int:
    """Rust's `u8::from_str`: digits with an optional leading `+`, at most 255."""
    digits = text[1:] if text.startswith("+") else text
    if not text:
        raise CidrError("cannot parse integer from empty string")
    if not digits or not digits.isascii() or not digits.isdigit():
        raise CidrError("invalid digit found in string")
    if int(digits) > 255:
        raise CidrError("number too large to fit in target type")
    return int(digits)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address as the cidr crate parses it (strict, then short IPv4 forms)."""
    if "%" not in text:
        try:
            return ipaddress.ip_address(text)
        except ValueError:
            pass
    parts = text.split(".")
    if 1 <= len(parts) <= 4:
        try:
            octets = [_rust_u8(p) for p in parts]
        except CidrError:
            pass
        else:
            return ipaddress.IPv4Address(bytes(octets + [0] * (4 - len(octets))))
    raise CidrError("couldn't parse address in network: invalid IP address syntax")


def _strict_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if "%" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _network(text: str) -> Network | str:
    if text == ANY:
        return ANY
    slash = text.rfind("/")
    if slash == -1:
        return ipaddress.ip_network(_address(text))
    address = _address(text[:slash])
    try:
        length = _rust_u8(text[slash + 1 :])
    except CidrError as err:
        raise CidrError(f"couldn't parse length in network: {err}") from None
    family, limit = ("Ipv4", 32) if address.version == 4 else ("Ipv6", 128)
    if length > limit:
        raise CidrError(
            f"invalid length for network: Network length {length} is too long for {family} "
            f"(maximum: {limit})"
        )
    try:
        return ipaddress.ip_network(f"{address}/{length}")
    except ValueError:
        raise CidrError("host part of address was not zero") from None


def show(network: Network | str) -> str:
    """A block as kumod displays it: hosts without their length."""
    if isinstance(network, str):
        return network
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def parse_cidr(text: str) -> Network | str:
    """kumod's `parse_cidr`: a block, or "any"; CidrError worded as kumod's."""
    try:
        return _network(text)
    except CidrError as err:
        message = f"{text} is not a valid CIDR: {err}"
        slash = text.rfind("/")
        address = _strict_address(text[:slash]) if slash != -1 else None
        if address is not None and str(err) == "host part of address was not zero":
            length = _rust_u8(text[slash + 1 :])
            loose = ipaddress.ip_network((address, length), strict=False)
            message += f". Did you mean {show(loose)}?"
        raise CidrError(message) from None


def parse_key(text: str) -> Network | str:
    """A map key: a block, `any`, or an address with a port (`IP:PORT`, `[IP]`, `[IP]:PORT`)."""
    try:
        return parse_cidr(text)
    except CidrError as err:
        if text.startswith("[") and "]" in text[1:]:
            address = text[1:].split("]", 1)[0]
            what = f"the []-enclosed portion of '{text}'"
        elif ":" in text:
            address = text.rsplit(":", 1)[0]
            what = f"the :-delimited portion of '{text}'"
        else:
            raise err from None
        try:
            return parse_cidr(address)
        except CidrError as inner:
            raise CidrError(
                f"failed to parse '{address}', {what}, as an IP address: {inner}"
            ) from None


class CidrMap(LuaMap):
    """`kumo.cidr.make_map`'s map: `map[address]` and `map[block] = value`."""

    kind = "kumo.cidr map"

    def __init__(self, runtime: Any, data: Any = None, shared: bool = False) -> None:
        super().__init__(runtime, radix.Radix() if data is None else data, shared)

    def _copy_data(self) -> Any:
        tree = radix.Radix()
        for node in self._data:
            tree.add(node.prefix).data[_VALUE] = node.data[_VALUE]
        return tree

    def lookup(self, key: str) -> tuple[bool, object]:
        packed = packed_address(key)
        if packed is None:
            network = parse_key(key)
            if isinstance(network, str):
                raise CidrError(f"{self.kind}: `any` is a block, not an address to look up")
            packed = network.network_address.packed
        node = self._data.search_best(packed=packed)
        return (False, None) if node is None else (True, node.data[_VALUE])

    def assign(self, key: str, value: object) -> None:
        self.insert(parse_key(key), value)

    def insert(self, network: Network | str, value: object) -> None:
        """Make every address in `network` map to `value` (entries inside it are replaced)."""
        tree = self._writable()
        for block in _EVERYTHING if isinstance(network, str) else (network,):
            prefix = str(block)
            for node in tree.search_covered(prefix):
                tree.delete(node.prefix)
            tree.add(prefix).data[_VALUE] = value


def packed_address(key: str) -> bytes | None:
    """The fast path of a lookup: a plain address, `[IP]`, `[IP]:PORT` or `IP:PORT`.

    The C parser accepts only canonical addresses (no short IPv4 forms, no
    leading zeros, no zones), each of which parse_key reads the same way, in
    the same order; None: leave it to parse_key.
    """
    address = _pton(key)
    if address is not None:
        return address
    if key.startswith("[") and "]" in key[1:]:
        return _pton(key[1:].split("]", 1)[0])
    if ":" in key:
        return _pton(key.rsplit(":", 1)[0])
    return None


def _pton(text: str) -> bytes | None:
    try:
        return socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)
    except OSError:
        return None


def seed_order(network: Network | str) -> tuple[int, int, int]:
    """The order make_map inserts its table's entries in: wider blocks first."""
    if isinstance(network, str):
        return (-1, 0, 0)
    return (network.prefixlen, network.version, int(network.network_address))
