-- Pipelined transactions: BEGIN, an error, the failed state and ROLLBACK, then a committed transaction, all sent at once.
-- pipeline
-- modes: session transaction auto
-- setup: CREATE SCHEMA IF NOT EXISTS conf_pipeline
-- setup: CREATE TABLE IF NOT EXISTS conf_pipeline.t (id int PRIMARY KEY)
BEGIN
-- next
INSERT INTO conf_pipeline.t VALUES (1)
-- next
SELECT 1/0
-- next
SELECT 'aborted'
-- next
ROLLBACK
-- next
BEGIN
-- next
INSERT INTO conf_pipeline.t VALUES (2)
-- next
SELECT count(*) FROM conf_pipeline.t
-- next
ROLLBACK
-- next
SELECT count(*) FROM conf_pipeline.t
-- next
BEGIN
-- next
SAVEPOINT a
-- next
SELECT nope
-- next
ROLLBACK TO a
-- next
SELECT 'recovered'
-- next
COMMIT
