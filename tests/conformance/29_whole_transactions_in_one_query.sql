-- Whole transactions inside one simple Query, which even statement mode accepts (no transaction is left open).
-- protocols: simple
-- setup: CREATE SCHEMA IF NOT EXISTS conf_whole
-- setup: CREATE TABLE IF NOT EXISTS conf_whole.t (id int PRIMARY KEY)
BEGIN; SELECT 1 AS one; COMMIT
-- next
BEGIN; INSERT INTO conf_whole.t VALUES (1); ROLLBACK
-- next
BEGIN; SET LOCAL DateStyle = 'German'; SELECT '2024-05-17'::date AS d; COMMIT; SELECT '2024-05-17'::date AS d
-- next
BEGIN; SAVEPOINT a; INSERT INTO conf_whole.t VALUES (2); ROLLBACK TO a; SELECT count(*) FROM conf_whole.t; COMMIT
-- next
START TRANSACTION ISOLATION LEVEL SERIALIZABLE; SHOW transaction_isolation; COMMIT
-- next
SELECT count(*) FROM conf_whole.t
