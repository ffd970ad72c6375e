-- Notices and warnings: RAISE at each level, IF EXISTS notices, many notices, notices between rows and before an error.
-- setup: CREATE SCHEMA IF NOT EXISTS conf_notices
-- setup: CREATE OR REPLACE FUNCTION conf_notices.noisy(i int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'row %', i; RETURN i; END $$
DO $$ BEGIN RAISE NOTICE 'hello %', 'world'; END $$
-- next
DO $$ BEGIN RAISE WARNING 'careful' USING DETAIL = 'd', HINT = 'h'; RAISE INFO 'info'; RAISE LOG 'not sent'; RAISE DEBUG 'not sent'; END $$
-- next
DROP TABLE IF EXISTS conf_no_such_table
-- next
DROP SCHEMA IF EXISTS conf_no_such_schema CASCADE
-- next
DO $$ BEGIN FOR i IN 1..200 LOOP RAISE NOTICE 'notice %', i; END LOOP; END $$
-- next
DO $$ BEGIN RAISE NOTICE 'before error'; RAISE EXCEPTION 'then error'; END $$
-- next
SELECT x, conf_notices.noisy(x) FROM generate_series(1, 5) x
-- next
SELECT conf_notices.noisy(x) / (x - 3) FROM generate_series(1, 5) x
-- next
DO $$ BEGIN RAISE NOTICE USING MESSAGE = 'with a code', ERRCODE = '01000', SCHEMA = 's', TABLE = 't'; END $$
