-- Several commands in one simple Query: results in order, an error stops the rest and rolls back the implicit transaction.
-- protocols: simple
-- setup: CREATE SCHEMA IF NOT EXISTS conf_multi
-- setup: CREATE TABLE IF NOT EXISTS conf_multi.t (a int)
SELECT 1 AS a; SELECT 'two' AS b, 2 AS c; SELECT 3 WHERE false
-- next
SELECT 1; SELECT 1/0; SELECT 3
-- next
SELECT x FROM generate_series(1, 3) x; SELECT nope; SELECT 'never'
-- next
SELECT 1;;; SELECT 2;
-- next
SELECT 'no rows' WHERE false; VALUES (1), (2)
-- next
INSERT INTO conf_multi.t VALUES (1); INSERT INTO conf_multi.t VALUES (2); SELECT 1/0
-- next
SELECT count(*) FROM conf_multi.t
-- next
DO $$ BEGIN RAISE NOTICE 'first'; END $$; SELECT 2; DO $$ BEGIN RAISE NOTICE 'second'; END $$
-- next
SELECT 1; SELEC 2; SELECT 3
-- next
SHOW DateStyle; SELECT current_setting('DateStyle')
