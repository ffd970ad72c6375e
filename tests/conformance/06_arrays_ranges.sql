-- Arrays (multidimensional, custom bounds, NULL elements, quoting) and ranges and multiranges.
SELECT ARRAY[1, 2, 3] AS ints, ARRAY[[1, 2], [3, 4]] AS two_d, ARRAY[[[1], [2]], [[3], [4]]] AS three_d,
       '{}'::int[] AS empty, '[0:2]={7,8,9}'::int[] AS bounds, '[1:2][-1:0]={{1,2},{3,4}}'::int[] AS bounds2
-- next
SELECT ARRAY[1, NULL, 3] AS with_null, ARRAY[NULL, NULL]::text[] AS all_null,
       ARRAY['a b', 'c"d', E'e\\f', 'NULL', '', NULL, '{x}', 'g,h', ' lead'] AS texts
-- next
SELECT ARRAY[1.5, 'NaN']::numeric[] AS nums, ARRAY['2024-01-01'::date] AS dates,
       ARRAY['{"a":1}'::jsonb] AS docs, ARRAY[ROW(1, 'x')] AS rows, ARRAY[true, false] AS bools,
       ARRAY['\x01'::bytea] AS bytes, ARRAY['Infinity'::float8, '-0'] AS floats
-- next
SELECT array_agg(x ORDER BY x DESC) AS agg, array_agg(ARRAY[x, -x]) AS agg2
FROM generate_series(1, 10) x
-- next
SELECT (ARRAY[[1, 2], [3, 4]])[2][1] AS elem, array_dims(ARRAY[[1, 2, 3], [4, 5, 6]]) AS dims,
       cardinality(ARRAY[[1, 2], [3, 4]]) AS card, (ARRAY[1, 2, 3])[2:3] AS slice
-- next
SELECT unnest(ARRAY['a', NULL, 'c']) AS u, generate_subscripts(ARRAY['a', NULL, 'c'], 1) AS i
-- next
SELECT int4range(1, 10) AS r1, int4range(1, 10, '[]') AS r2, numrange(1.5, NULL) AS r3,
       int8range(5, 5) AS empty, '(,)'::int4range AS unbounded,
       daterange('2024-01-01', 'infinity') AS dates,
       tstzrange('2024-01-01 00:00+00', '2024-01-02 00:00+00') AS times
-- next
SELECT '{[1,3), [5,8)}'::int4multirange AS multi, int4range(1, 5) * int4range(3, 10) AS intersect,
       int4range(1, 5) @> 3 AS contains, isempty('empty'::numrange) AS is_empty,
       ARRAY[int4range(1, 2), NULL] AS range_array
-- next
SELECT ARRAY[[1, 2], [3]]
-- next
SELECT int4range(10, 1)
-- next
SELECT '{1,2'::int[]
-- next
SELECT (ARRAY[1, 2])[1][2][3][4][5][6][7]
