-- Transaction blocks: ReadyForQuery status I/T/E, isolation levels, SET LOCAL and SHOW, savepoints, warnings, temp tables.
-- modes: session transaction auto
-- setup: CREATE SCHEMA IF NOT EXISTS conf_tx
-- setup: CREATE TABLE IF NOT EXISTS conf_tx.t (id int PRIMARY KEY, v text)
BEGIN
-- next
SELECT 1
-- next
COMMIT
-- next
BEGIN ISOLATION LEVEL REPEATABLE READ
-- next
SHOW transaction_isolation
-- next
SET LOCAL statement_timeout = '5s'
-- next
SHOW statement_timeout
-- next
SET LOCAL search_path = conf_tx, public
-- next
SHOW search_path
-- next
SELECT count(*) FROM t
-- next
SET LOCAL DateStyle = 'German'
-- next
SELECT '2024-05-17'::date, current_setting('DateStyle')
-- next
BEGIN
-- next
ROLLBACK
-- next
SHOW statement_timeout
-- next
SHOW DateStyle
-- next
COMMIT
-- next
ROLLBACK
-- next
START TRANSACTION READ ONLY
-- next
SHOW transaction_read_only
-- next
CREATE TABLE conf_tx.never (a int)
-- next
ROLLBACK
-- next
BEGIN
-- next
INSERT INTO conf_tx.t VALUES (1, 'one'), (2, 'two')
-- next
SAVEPOINT a
-- next
INSERT INTO conf_tx.t VALUES (3, 'three')
-- next
SAVEPOINT b
-- next
DELETE FROM conf_tx.t
-- next
ROLLBACK TO SAVEPOINT a
-- next
SELECT * FROM conf_tx.t ORDER BY id
-- next
RELEASE SAVEPOINT a
-- next
ROLLBACK
-- next
BEGIN
-- next
CREATE TEMP TABLE tmp_rows (a int) ON COMMIT DROP
-- next
INSERT INTO tmp_rows SELECT generate_series(1, 5)
-- next
SELECT sum(a) FROM tmp_rows
-- next
COMMIT
-- next
SELECT count(*) FROM conf_tx.t
