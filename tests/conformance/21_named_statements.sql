-- Named prepared statements (extended protocol): Parse s1, s2..., Describe statement, executed twice, then closed.
-- named
SELECT 1 AS one
-- next
SELECT x, x::text AS t FROM generate_series(1, 3) x
-- next
SELECT $1::int AS needs_a_parameter
-- next
SELECT nope
-- next
VALUES ('a', NULL), ('b', 'c')
-- next
SHOW DateStyle
-- next
SELECT 1/0
