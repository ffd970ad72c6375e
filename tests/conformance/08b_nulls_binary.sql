-- The NULLs case with binary results in the extended protocol.
-- binary
SELECT NULL
-- next
SELECT NULL::int AS a, 1 AS b, 2 AS c
-- next
SELECT 1 AS a, NULL::text AS b, 3 AS c
-- next
SELECT 1 AS a, 2 AS b, NULL::bytea AS c
-- next
SELECT NULL::int AS i, NULL::text AS t, NULL::date AS d, NULL::jsonb AS j, NULL::int[] AS a,
       NULL::bool AS b, NULL::numeric AS n, NULL::uuid AS u, NULL::float8 AS f
-- next
SELECT x, CASE WHEN x % 2 = 0 THEN NULL ELSE x END AS odd, NULLIF(x, 3) AS not3
FROM generate_series(1, 6) x
-- next
SELECT '' AS empty_not_null, NULL AS null_text, ARRAY[NULL]::int[] AS null_elem,
       ROW(NULL, NULL) AS null_fields, '{"a": null}'::jsonb AS json_null, ''::bytea AS empty_bytes
-- next
SELECT NULL IS NULL AS is_null, NULL = NULL AS eq, coalesce(NULL, NULL, 'third') AS third,
       count(NULL) AS cnt, max(NULL::int) AS mx
-- next
VALUES (1, NULL), (NULL, 2), (NULL, NULL)
-- next
SELECT NULL::int FROM generate_series(1, 3)
