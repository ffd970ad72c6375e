-- Integers, numerics and floating-point values at their edges, and numeric errors.
SELECT 0::int2 AS zero, (-32768)::int2 AS min2, 32767::int2 AS max2,
       (-2147483648)::int4 AS min4, 2147483647::int4 AS max4,
       (-9223372036854775808)::int8 AS min8, 9223372036854775807::int8 AS max8
-- next
SELECT 'NaN'::numeric AS nan, 0.1::numeric + 0.2 AS point3, 1e-30::numeric AS tiny,
       10::numeric ^ 300 AS huge, -123456789012345678901234567890.123456789::numeric AS neg,
       round(2.5) AS rounded, 1.10::numeric(10, 4) AS scaled, 'Infinity'::numeric AS inf,
       '-Infinity'::numeric AS neg_inf
-- next
SELECT 'Infinity'::float8 AS inf, '-Infinity'::float8 AS neg_inf, 'NaN'::float8 AS nan,
       '-0'::float8 AS neg_zero8, '-0'::float4 AS neg_zero4, 1e308::float8 AS big,
       1e-307::float8 AS small, 3.4e38::float4 AS big4, 0.1::float4 AS tenth4, 0.1::float8 AS tenth8,
       pi() AS pi, 1::float8 / 3 AS third
-- next
SELECT sum(x) AS s, avg(x) AS a, min(x), max(x), stddev(x) AS sd, variance(x::float8) AS v
FROM generate_series(1, 1000) x
-- next
SELECT 1::oid AS one, 4294967295::oid AS max_oid, 'int4'::regtype AS typ,
       'pg_class'::regclass AS rel, '123'::xid AS xid, '0/16B3748'::pg_lsn AS lsn
-- next
SELECT x::int2 FROM generate_series(32766, 32768) x
-- next
SELECT 9223372036854775807::int8 + 1
-- next
SELECT 1e400::float8
-- next
SELECT 'abc'::numeric
-- next
SELECT sqrt(-1::float8)
