"""Load the example's sources into Redis: python examples/redis/load-sample-data.py [URL].

Uses redis-py (installed with egress-resolver). After changing a source,
tell the sidecars: the cached definition otherwise lives until its ttl.
"""

import sys

import redis

SOURCES = {
    "ip-1": {"source_address": "10.0.0.1", "ehlo_domain": "mta1.example.com"},
    "ip-2": {"source_address": "10.0.0.2", "ehlo_domain": "mta2.example.com", "ttl": "300"},
    "proxied-1": {
        "ha_proxy_source_address": "10.0.0.3",
        "ha_proxy_server": "10.0.0.100:5000",
        "ttl": "60",
    },
}

url = sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/"
client = redis.Redis.from_url(url, decode_responses=True)
for name, fields in SOURCES.items():
    key = f"source:{name}"
    client.delete(key)
    client.hset(key, mapping=fields)
    print(f"{key}: {fields}")
