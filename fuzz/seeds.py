#!/usr/bin/env python3
"""Writes the checked-in seed corpus (corpus/<target>/seed-*): well-formed examples of what
each target parses, so the fuzzer starts from real messages instead of noise.

Run from anywhere: python3 fuzz/seeds.py. It rewrites only files named seed-*."""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def msg(tag, body=b""):
    return tag + struct.pack(">I", len(body) + 4) + body


def cstr(s):
    return s.encode() + b"\0"


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# frontend_messages: the first byte is where the stream splits in two reads.
bind = msg(b"B", b"\0" + cstr("s1") + struct.pack(">hhh", 1, 1, 1) + struct.pack(">i", 8) + struct.pack(">q", 42) + struct.pack(">h", 0))
frontend = {
    "simple-query": msg(b"Q", cstr("SELECT 1")),
    "extension": msg(b"Q", cstr("SET SHARDING KEY TO '1234'")),
    "hint": msg(b"Q", cstr("/* shard_id: 2 */ SELECT * FROM t")),
    "session-state": msg(b"Q", cstr("LISTEN chan; CREATE TEMP TABLE t (id int); SELECT pg_advisory_lock(1)")),
    "extended": msg(b"P", cstr("s1") + cstr("SELECT $1::bigint") + struct.pack(">hI", 1, 20)) + bind
    + msg(b"D", b"S" + cstr("s1")) + msg(b"E", cstr("") + struct.pack(">i", 0)) + msg(b"C", b"S" + cstr("s1")) + msg(b"S"),
    "copy": msg(b"d", b"1\tone\n" * 4) + msg(b"c"),
    "sasl": msg(b"p", cstr("SCRAM-SHA-256") + struct.pack(">i", 32) + b"n,,n=,r=fyko+d2lbbFgONRv9qkxdawL"),
    "password": msg(b"p", cstr("secret")),
    "deallocate": msg(b"Q", cstr("DEALLOCATE ALL")) + msg(b"X"),
    "bad-length": msg(b"Q", cstr("SELECT 1"))[:1] + struct.pack(">i", 2) + b"xx",
}
for i, (name, data) in enumerate(frontend.items()):
    write("frontend_messages", name, bytes([(i * 7) % 256]) + data)

# backend_messages
write("backend_messages", "login", msg(b"R", struct.pack(">i", 0)) + msg(b"S", cstr("server_version") + cstr("15.18"))
      + msg(b"K", struct.pack(">ii", 1234, 5678)) + msg(b"Z", b"I"))
write("backend_messages", "sasl", msg(b"R", struct.pack(">i", 10) + cstr("SCRAM-SHA-256") + b"\0")
      + msg(b"R", struct.pack(">i", 11) + b"r=abc,s=c2FsdA==,i=4096") + msg(b"R", struct.pack(">i", 12) + b"v=AAAA"))
write("backend_messages", "md5", msg(b"R", struct.pack(">i", 5) + b"salt"))
write("backend_messages", "rows", msg(b"T", struct.pack(">h", 1) + cstr("a") + struct.pack(">ihihih", 0, 0, 23, 4, -1, 0))
      + msg(b"D", struct.pack(">hi", 2, 1) + b"1" + struct.pack(">i", -1)) + msg(b"C", cstr("SELECT 1")) + msg(b"Z", b"T"))
write("backend_messages", "error", msg(b"E", b"SERROR\0C26000\0Mprepared statement \"pgcorral_3\" does not exist\0\0") + msg(b"Z", b"E"))
write("backend_messages", "notice", msg(b"N", b"SWARNING\0C01000\0Mhello\0\0") + msg(b"A", struct.pack(">i", 1) + cstr("chan") + cstr("x")))

# startup_packet
def startup(params, minor=0):
    body = struct.pack(">hh", 3, minor) + b"".join(cstr(k) + cstr(v) for k, v in params) + b"\0"
    return struct.pack(">i", len(body) + 4) + body

write("startup_packet", "startup", startup([("user", "app"), ("database", "app"), ("application_name", "psql")]))
write("startup_packet", "options", startup([("user", "app"), ("options", "-c search_path=a,b --work_mem=4MB"), ("DateStyle", "ISO")], 2))
write("startup_packet", "replication", startup([("user", "app"), ("replication", "database")]))
write("startup_packet", "ssl", struct.pack(">ii", 8, 80877103))
write("startup_packet", "gss", struct.pack(">ii", 8, 80877104))
write("startup_packet", "cancel", struct.pack(">iiii", 16, 80877102, 1234, 5678))

# sql_extensions
for name, sql in {
    "sharding-key": "SET SHARDING KEY TO '1234'",
    "shard": "set shard to 'any'",
    "role": "SET SERVER ROLE TO 'replica'",
    "show": "SHOW SHARD",
    "hint": "/* sharding_key: 99 */ SELECT * FROM orders WHERE id = 99",
    "listen": "LISTEN \"a\"\"b\"; UNLISTEN *",
    "temp": "CREATE TEMPORARY TABLE t AS SELECT 1; DROP TABLE t",
    "cursor": "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
    "set": "SET LOCAL search_path = 'a', b; RESET ALL; SET ROLE alice",
    "dollar": "SELECT $tag$ LISTEN x $tag$, E'\\' LISTEN', /* LISTEN /* nested */ */ 1",
    "admin-show": "SHOW POOLS;",
    "admin-kill": "KILL app",
    "admin-set": "SET default_pool_size = 10",
    "deallocate": "DEALLOCATE PREPARE ALL;",
}.items():
    write("sql_extensions", name, sql.encode())

# config_loader
example = open(os.path.join(HERE, "..", "config", "pgcorral.toml"), "rb").read()
write("config_loader", "example", example)
write("config_loader", "minimal", b"""[general]
listen = "127.0.0.1:6432"
auth_type = "md5"
[users.app]
password = "md5aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
[pools.app]
pool_mode = "transaction"
servers = [{ host = "127.0.0.1", port = 5432, role = "primary" }]
#env PGCORRAL_POOLS__APP__POOL_SIZE=50
""")
write("config_loader", "sharded", b"""[users.app]
password = "x"
[defaults]
query_wait_timeout = "5s"
[pools.orders]
sharding_function = "sha1"
[[pools.orders.shards]]
database = "orders_0"
servers = [{ host = "127.0.0.1", port = 5432, role = "auto" }]
[[pools.orders.shards]]
servers = [{ host = "127.0.0.1", port = 5433, role = "replica" }]
""")

# scram_messages: the first byte is the length of the first message.
def two(a, b):
    return bytes([len(a)]) + a + b

write("scram_messages", "client", two(b"n,,n=,r=fuzzclientnonce", b"c=biws,r=fuzzclientnoncefuzzservernonce,p=" + b"A" * 43 + b"="))
write("scram_messages", "server", two(b"r=fuzzclientnonceXYZ,s=ZnV6ei1zYWx0,i=4096", b"v=" + b"A" * 43 + b"="))
write("scram_messages", "binding", two(b"y,,n=user,r=abc", b"c=eSws,r=abcfuzzservernonce,p=AAAA"))

# credential_files
write("credential_files", "userlist", b'"app" "md5aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"\n; comment\n"o""dd" "SCRAM-SHA-256$4096:c2FsdA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="\n')
write("credential_files", "hba", b"# TYPE DATABASE USER ADDRESS METHOD\nlocal all all trust\nhost all all 127.0.0.1/32 scram-sha-256\nhostssl \"app\",db2 +grp 10.0.0.0 255.0.0.0 cert clientcert=verify-full\nhostnossl all all ::1/128 reject\n")
write("credential_files", "scram", b"SCRAM-SHA-256$4096:c2FsdA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
write("credential_files", "md5", b"md5aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")

# certificate_subject: a minimal DER certificate shape with a subject CN.
def der(tag, content):
    n = len(content)
    if n < 128:
        ln = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        ln = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + ln + content

oid_cn = der(0x06, bytes([0x55, 0x04, 0x03]))
name = der(0x30, der(0x31, der(0x30, oid_cn + der(0x0C, b"app.example"))))
alg = der(0x30, der(0x06, bytes([0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B])) + der(0x05, b""))
validity = der(0x30, der(0x17, b"250101000000Z") + der(0x17, b"350101000000Z"))
tbs = der(0x30, der(0xA0, der(0x02, b"\x02")) + der(0x02, b"\x01") + alg + name + validity + name + der(0x30, alg + der(0x03, b"\x00\x00")))
write("certificate_subject", "cert", der(0x30, tbs + alg + der(0x03, b"\x00" + b"\x00" * 8)))
write("certificate_subject", "empty", b"")

# prepared_statements takes structured input (arbitrary): any bytes make a sequence.
write("prepared_statements", "ops", bytes([3, 10, 0, 1, 0, 1, 1, 5, 2, 1, 6, 0, 1, 1, 6, 2, 0, 1, 5, 3, 1, 5]))
write("prepared_statements", "switch", bytes([1, 20, 0, 1, 1, 1, 1, 5, 6, 1, 1, 5, 6, 1, 2, 5, 3, 2, 5] * 3))
print("seeds written under", os.path.join(HERE, "corpus"), file=sys.stderr)
