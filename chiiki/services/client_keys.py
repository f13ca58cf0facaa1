"""Counts kept per client address (inquiries sent, failed logins): which counts an address takes a place in, and
the keyed hash a count is stored under.

An IPv4 address is one count; an IPv6 connection is given a whole /64 and may use any address of it, and a home
line a /56 or a /48 to spread over its /64s, so IPv6 counts by the /64 and more loosely by the /48. Behind a
reverse proxy, REFLEX_TRUSTED_PROXY_HOPS tells Reflex which forwarded address is the client's. The key of the
hash lives in the data folder, not in the database: a copy of the database alone cannot tell which address a
count stands for (with a plain hash, trying every IPv4 address takes minutes).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import os
import secrets
from pathlib import Path

SECRET_FILE = "inquiry-send.key"  # in the data folder (first made for the inquiries' counts)
SECRET_BYTES = 32


def networks(client: object, address_limit: int, network_limit: int, *,
             unknown_shared: bool = True) -> list[tuple[str, int]]:
    """(name, limit) of each count a request from this address takes a place in: an IPv4 address; for IPv6 the
    /64 the address is in and the /48 around it. When the address is unknown or not one: one count shared by
    all such requests, or none (`unknown_shared` off)."""
    try:
        ip = ipaddress.ip_address(client.strip()) if isinstance(client, str) else None
    except ValueError:
        ip = None
    if ip is None:
        return [("address:", address_limit)] if unknown_shared else []
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.version == 4:
        return [(f"address:{ip}", address_limit)]
    return [(f"address:{ipaddress.ip_network(f'{ip}/64', strict=False)}", address_limit),
            (f"network:{ipaddress.ip_network(f'{ip}/48', strict=False)}", network_limit)]


def keyed(data_dir: str, prefix: str, name: str) -> str:
    """A count's stored key: `prefix` and the keyed hash of its name, 64 characters at most."""
    return prefix + hmac.new(secret(data_dir), name.encode(), hashlib.sha256).hexdigest()[:64 - len(prefix)]


@functools.lru_cache(maxsize=4)
def secret(data_dir: str) -> bytes:
    """The key the counts are kept under, made once and kept in the data folder. Shared by every worker: the first
    one writes it whole (synced, then linked into place), the others read it. A file that is not a whole key
    (cut short by a power loss) is replaced: the counts kept under it are only lost, and purged within the
    hour."""
    path = Path(data_dir) / SECRET_FILE
    try:
        key: bytes | None = path.read_bytes()
    except FileNotFoundError:
        key = None
    if key is not None and len(key) == SECRET_BYTES:
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(SECRET_BYTES))
            f.flush()
            os.fsync(f.fileno())
        if key is not None:  # a broken key: replaced
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # only if no other worker has made it meanwhile
            except FileExistsError:
                pass
            except OSError:  # a volume without hard links: renamed into place instead
                os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    key = path.read_bytes()
    if len(key) != SECRET_BYTES:
        raise RuntimeError(f"{path} does not hold a {SECRET_BYTES}-byte key")
    return key
