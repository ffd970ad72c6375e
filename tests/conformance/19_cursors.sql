-- Cursors inside a transaction: DECLARE, FETCH in every direction, MOVE, CLOSE, binary cursors, cursor errors.
-- modes: session transaction auto
BEGIN
-- next
DECLARE c SCROLL CURSOR FOR SELECT x, x * x AS sq FROM generate_series(1, 20) x
-- next
FETCH 5 FROM c
-- next
MOVE FORWARD 3 IN c
-- next
FETCH NEXT FROM c
-- next
FETCH BACKWARD 2 FROM c
-- next
FETCH ABSOLUTE 18 FROM c
-- next
FETCH ALL FROM c
-- next
FETCH 1 FROM c
-- next
MOVE ABSOLUTE 0 IN c
-- next
FETCH FORWARD 2 FROM c
-- next
SELECT name, statement, is_holdable, is_binary, is_scrollable FROM pg_cursors ORDER BY name
-- next
CLOSE c
-- next
FETCH 1 FROM c
-- next
ROLLBACK
-- next
BEGIN
-- next
DECLARE b BINARY CURSOR FOR SELECT 1::int4 AS i, 'x'::text AS t, 2.5::float8 AS f, NULL::int AS n
-- next
FETCH ALL FROM b
-- next
DECLARE c2 NO SCROLL CURSOR FOR SELECT 1
-- next
FETCH NEXT FROM c2
-- next
FETCH BACKWARD 1 FROM c2
-- next
COMMIT
-- next
BEGIN
-- next
DECLARE big CURSOR FOR SELECT x FROM generate_series(1, 10000) x
-- next
FETCH 3000 FROM big
-- next
MOVE 5000 IN big
-- next
FETCH ALL FROM big
-- next
CLOSE ALL
-- next
COMMIT
-- next
SELECT count(*) FROM pg_cursors
