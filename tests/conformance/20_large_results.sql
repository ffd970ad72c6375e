-- Large results: 100000 rows, a single 10 MB value, wide rows, and an error after many rows.
SELECT x FROM generate_series(1, 100000) x
-- next
SELECT repeat('x', 10 * 1024 * 1024) AS ten_mb
-- next
SELECT decode(repeat('00ff', 1024 * 1024), 'hex') AS two_mb_bytea
-- next
SELECT x, repeat(md5(x::text), 20) AS wide FROM generate_series(1, 5000) x
-- next
SELECT 1 / (50000 - x) FROM generate_series(1, 100000) x
-- next
SELECT length(string_agg(md5(x::text), '')) FROM generate_series(1, 200000) x
