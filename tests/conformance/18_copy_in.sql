-- COPY FROM STDIN in text and csv formats; bad rows, constraint violations, empty copies and missing tables.
-- setup: CREATE SCHEMA IF NOT EXISTS conf_copy_in
-- setup: CREATE TABLE IF NOT EXISTS conf_copy_in.t (id int PRIMARY KEY, name text, note text)
TRUNCATE conf_copy_in.t
-- next
COPY conf_copy_in.t FROM STDIN
-- copy data:
1	one	\N
2	tab\there	é
3	back\\slash	日本
-- next
COPY conf_copy_in.t FROM STDIN WITH (FORMAT csv, HEADER)
-- copy data:
id,name,note
4,"quoted, comma","say ""hi"""
5,,empty
6,"multi
line",x
-- next
COPY conf_copy_in.t (id, note) FROM STDIN WITH (FORMAT csv, NULL 'nil')
-- copy data:
7,nil
8,"nil"
-- next
SELECT * FROM conf_copy_in.t ORDER BY id
-- next
COPY conf_copy_in.t FROM STDIN
-- copy data:
9	ok	x
oops	bad	x
-- next
COPY conf_copy_in.t FROM STDIN
-- copy data:
1	duplicate	x
-- next
COPY conf_copy_in.t FROM STDIN
-- copy data:
10	too	many	columns
-- next
COPY conf_copy_in.t FROM STDIN
-- next
COPY conf_copy_in.t FROM STDIN WITH (FORMAT csv)
-- copy data:
11,"unterminated
-- next
COPY conf_copy_in.missing FROM STDIN
-- copy data:
1
-- next
SELECT count(*) FROM conf_copy_in.t
-- next
TRUNCATE conf_copy_in.t
