-- Errors inside transactions: the failed state (E), COMMIT of a failed transaction, savepoint recovery.
-- modes: session transaction auto
-- setup: CREATE SCHEMA IF NOT EXISTS conf_txerr
-- setup: CREATE TABLE IF NOT EXISTS conf_txerr.t (id int PRIMARY KEY)
BEGIN
-- next
INSERT INTO conf_txerr.t VALUES (1)
-- next
SELECT 1/0
-- next
SELECT 2
-- next
COMMIT
-- next
SELECT count(*) FROM conf_txerr.t
-- next
BEGIN
-- next
INSERT INTO conf_txerr.t VALUES (2)
-- next
SAVEPOINT a
-- next
SELECT nope
-- next
SELECT 'aborted'
-- next
ROLLBACK TO SAVEPOINT a
-- next
SELECT 3
-- next
RELEASE SAVEPOINT a
-- next
ROLLBACK TO SAVEPOINT a
-- next
ROLLBACK
-- next
BEGIN
-- next
INSERT INTO conf_txerr.t VALUES (3), (3)
-- next
ROLLBACK
-- next
SELECT count(*) FROM conf_txerr.t
