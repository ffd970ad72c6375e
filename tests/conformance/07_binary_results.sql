-- Binary-format results: the extended protocol asks for format 1 on every column.
-- binary
-- setup: CREATE SCHEMA IF NOT EXISTS conf_binary
-- setup: DO $$ BEGIN CREATE TYPE conf_binary.color AS ENUM ('red', 'green'); EXCEPTION WHEN duplicate_object THEN NULL; END $$
SELECT 1::int2 AS i2, -2::int4 AS i4, 3::int8 AS i8, 1.5::float4 AS f4, -0::float8 AS f8,
       'Infinity'::float8 AS inf, 'NaN'::float4 AS nan
-- next
SELECT 'NaN'::numeric AS nan, 123456789.000123::numeric AS n1, -0.5::numeric AS n2,
       10::numeric ^ 100 AS huge, 0::numeric AS zero, 'Infinity'::numeric AS inf
-- next
SELECT 'text é'::text AS t, 'x'::char(3) AS c, 'name'::name AS n, '\xdeadbeef'::bytea AS b,
       true AS yes, false AS no, B'101' AS bits, 'q'::"char" AS qchar
-- next
SELECT '2024-02-29'::date AS d, '12:34:56.789'::time AS t, '12:00+05:30'::timetz AS tz,
       '2000-01-01 00:00:00.000001'::timestamp AS ts, '2024-06-30 12:00+02'::timestamptz AS tstz,
       '1 year 2 days 00:00:03'::interval AS i, 'infinity'::timestamp AS inf
-- next
SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, '{"a": [1, 2]}'::json AS j,
       '{"a": [1, 2]}'::jsonb AS jb, '10.1.2.3/8'::inet AS ip, '10.0.0.0/8'::cidr AS net,
       '08:00:2b:01:02:03'::macaddr AS mac, '1.23'::money AS m, 42::oid AS o
-- next
SELECT ARRAY[1, NULL, 3] AS ints, ARRAY[[1, 2], [3, 4]] AS two_d, '[0:1]={5,6}'::int[] AS bounds,
       ARRAY['a', NULL]::text[] AS texts, '{}'::int[] AS empty
-- next
SELECT int4range(1, 10) AS r, 'empty'::numrange AS e, '{[1,2),[5,6)}'::int4multirange AS mr,
       ROW(1, 'x', NULL) AS rec, 'green'::conf_binary.color AS color, '(1,2)'::point AS p
-- next
SELECT x, x::text, x * 1.5 AS f FROM generate_series(1, 50) x
-- next
SELECT '<a>x</a>'::xml AS doc, to_tsvector('simple', 'a b') AS vec, '0/1'::pg_lsn AS lsn
-- next
SELECT 1/0
