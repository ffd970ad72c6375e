-- Errors with their SQLSTATE and every field: detail, hint, position, internal query, context, constraint.
-- setup: CREATE SCHEMA IF NOT EXISTS conf_errors
-- setup: CREATE TABLE IF NOT EXISTS conf_errors.t (id int PRIMARY KEY, name text NOT NULL, qty int CONSTRAINT qty_positive CHECK (qty >= 0), parent int REFERENCES conf_errors.t (id))
-- setup: INSERT INTO conf_errors.t VALUES (1, 'one', 1, NULL) ON CONFLICT DO NOTHING
SELECT 1/0
-- next
SELEC 1
-- next
SELECT 1 FROM
-- next
SELECT * FROM conf_errors.missing
-- next
SELECT nope FROM conf_errors.t
-- next
INSERT INTO conf_errors.t VALUES (1, 'duplicate', 1, NULL)
-- next
INSERT INTO conf_errors.t VALUES (2, NULL, 1, NULL)
-- next
INSERT INTO conf_errors.t VALUES (2, 'negative', -1, NULL)
-- next
INSERT INTO conf_errors.t VALUES (2, 'orphan', 1, 99)
-- next
UPDATE conf_errors.t SET qty = qty - 5 WHERE id = 1
-- next
SELECT 'abc'::int
-- next
SELECT lower(1, 2)
-- next
SELECT no_such_function(1)
-- next
SELECT 1 + 'a'::text
-- next
DO $$ BEGIN RAISE EXCEPTION 'custom failure %', 42 USING DETAIL = 'some detail', HINT = 'some hint'; END $$
-- next
DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'bad parameter', COLUMN = 'c', CONSTRAINT = 'k', DATATYPE = 'int', TABLE = 't', SCHEMA = 's'; END $$
-- next
DO $$ BEGIN EXECUTE 'SELECT 1 +'; END $$
-- next
DO $$ DECLARE x int; BEGIN x := 1 / 0; END $$
-- next
SELECT (SELECT x FROM generate_series(1, 2) x)
-- next
SELECT * FROM conf_errors.t ORDER BY id
-- next
SELECT 'still usable'
