"""`kumo.dns.load_resolv_conf`: a resolv.conf read into a DnsResolverConfig table.

Read: `nameserver` lines (port 53, a `%zone` suffix dropped), `domain` (also
the search list), `search`, and the `ndots`, `timeout`, `attempts` and `edns0`
options (defaults 1, 5s, 2, off); a comment starts with `#` or `;`.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any


def load_resolv_conf(path: str) -> dict[str, Any]:
    """A resolv.conf's name servers, domain, search list and options, as a DnsResolverConfig."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise ValueError(f"reading {path}: {err.strerror}") from None
    servers: list[str] = []
    domain: str | None = None
    search: list[str] = []
    options: dict[str, Any] = {"ndots": 1, "timeout": "5s", "attempts": 2, "edns0": False}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        keyword, args = words[0], words[1:]
        if keyword == "nameserver" and args:
            try:
                ip = ipaddress.ip_address(args[0].split("%", 1)[0])
            except ValueError:
                raise ValueError(f"parsing resolv.conf: invalid nameserver {args[0]}") from None
            servers.append(f"{ip}:53" if ip.version == 4 else f"[{ip}]:53")
        elif keyword == "domain" and args:
            domain, search = args[0], [args[0]]
        elif keyword == "search":
            search = [s for s in args if s != "--"]
        elif keyword == "options":
            for option in args:
                name, _, number = option.partition(":")
                if name in ("ndots", "attempts") and number.isdigit():
                    options[name] = int(number)
                elif name == "timeout" and number.isdigit():
                    options["timeout"] = f"{int(number)}s"
                elif name == "edns0":
                    options["edns0"] = True
    config: dict[str, Any] = {"search": search, "name_servers": servers, "options": options}
    if domain is not None:
        config["domain"] = domain
    return config
