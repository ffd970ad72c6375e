-- COPY TO STDOUT in text, csv and binary formats; large copies; errors before and during the copy.
-- setup: CREATE SCHEMA IF NOT EXISTS conf_copy_out
-- setup: CREATE TABLE IF NOT EXISTS conf_copy_out.t (id int, name text, note text, data bytea)
-- setup: TRUNCATE conf_copy_out.t
-- setup: INSERT INTO conf_copy_out.t VALUES (1, 'one', NULL, '\x00'), (2, E'tab\tand \\ backslash', E'line\nbreak', NULL), (3, 'quote "and" comma,', 'é', '\xff')
COPY conf_copy_out.t TO STDOUT
-- next
COPY (SELECT * FROM conf_copy_out.t ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)
-- next
COPY (SELECT * FROM conf_copy_out.t ORDER BY id) TO STDOUT WITH (FORMAT csv, DELIMITER ';', QUOTE '''', FORCE_QUOTE *)
-- next
COPY (SELECT * FROM conf_copy_out.t ORDER BY id) TO STDOUT WITH (FORMAT binary)
-- next
COPY (SELECT x, md5(x::text) FROM generate_series(1, 20000) x) TO STDOUT
-- next
COPY (SELECT 1 WHERE false) TO STDOUT
-- next
COPY (SELECT 1 / (3 - x) FROM generate_series(1, 5) x) TO STDOUT
-- next
COPY conf_copy_out.missing TO STDOUT
-- next
COPY conf_copy_out.t (nope) TO STDOUT
