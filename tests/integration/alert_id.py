#!/usr/bin/env python3
"""alert_id as docs/kafka.md defines it, written independently of vigil's C: the
MurmurHash3 x64-128 (seed 0x76696769) of le64(len(account)) account le64(len(id)) id
le64(ruleset), as 32 hex digits (h1 then h2). Usage: alert_id.py ACCOUNT ID RULESET"""
import struct
import sys

M = (1 << 64) - 1


def rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M


def fmix(k):
    k ^= k >> 33
    k = (k * 0xff51afd7ed558ccd) & M
    k ^= k >> 33
    k = (k * 0xc4ceb9fe1a85ec53) & M
    k ^= k >> 33
    return k


def murmur3_x64_128(data, seed):
    c1, c2 = 0x87c37b91114253d5, 0x4cf5ad432745937f
    h1 = h2 = seed
    n = len(data) // 16
    for i in range(n):
        k1, k2 = struct.unpack_from("<QQ", data, i * 16)
        k1 = (rotl((k1 * c1) & M, 31) * c2) & M
        h1 ^= k1
        h1 = (rotl(h1, 27) + h2) & M
        h1 = (h1 * 5 + 0x52dce729) & M
        k2 = (rotl((k2 * c2) & M, 33) * c1) & M
        h2 ^= k2
        h2 = (rotl(h2, 31) + h1) & M
        h2 = (h2 * 5 + 0x38495ab5) & M
    tail = data[n * 16:]
    k1 = int.from_bytes(tail[:8], "little")
    k2 = int.from_bytes(tail[8:], "little")
    if len(tail) > 8:
        h2 ^= (rotl((k2 * c2) & M, 33) * c1) & M
    if len(tail) > 0:
        h1 ^= (rotl((k1 * c1) & M, 31) * c2) & M
    h1 ^= len(data)
    h2 ^= len(data)
    h1 = (h1 + h2) & M
    h2 = (h2 + h1) & M
    h1, h2 = fmix(h1), fmix(h2)
    h1 = (h1 + h2) & M
    h2 = (h2 + h1) & M
    return h1, h2


def alert_id(account, eid, ruleset):
    a, i = account.encode(), eid.encode()
    d = struct.pack("<Q", len(a)) + a + struct.pack("<Q", len(i)) + i + struct.pack("<q", ruleset)
    h1, h2 = murmur3_x64_128(d, 0x76696769)
    return "%016x%016x" % (h1, h2)


if __name__ == "__main__":
    print(alert_id(sys.argv[1], sys.argv[2], int(sys.argv[3])))
