-- uuid, json and jsonb, network addresses, money, enums, composite values, geometry, xml, text search.
-- setup: CREATE SCHEMA IF NOT EXISTS conf_types
-- setup: DO $$ BEGIN CREATE TYPE conf_types.mood AS ENUM ('sad', 'ok', 'happy'); EXCEPTION WHEN duplicate_object THEN NULL; END $$
-- setup: DO $$ BEGIN CREATE TYPE conf_types.pair AS (a int, b text); EXCEPTION WHEN duplicate_object THEN NULL; END $$
SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u1,
       '00000000-0000-0000-0000-000000000000'::uuid AS nil,
       '{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}'::uuid AS braces
-- next
SELECT '{"b": 1, "a": [1, 2.50, null, true], "c": {"d": "é\u00e9"}}'::json AS j,
       '{"b": 1, "a": [1, 2.50, null, true], "c": {"d": "é\u00e9"}}'::jsonb AS jb,
       '"str"'::jsonb AS s, 'null'::jsonb AS n, '[]'::json AS empty, '1e400'::jsonb AS big
-- next
SELECT jsonb_build_object('k', 1, 'arr', ARRAY[1, 2]) AS built,
       '{"a":{"b":[10,20]}}'::jsonb #> '{a,b,1}' AS path,
       jsonb_pretty('{"a":[1,{"b":2}]}') AS pretty, row_to_json(row(1, 'x')) AS row_json,
       (SELECT json_agg(x) FROM generate_series(1, 3) x) AS agg
-- next
SELECT * FROM jsonb_each('{"a": 1, "b": "two", "c": null}')
-- next
SELECT '192.168.1.1'::inet AS v4, '192.168.1.5/24'::inet AS v4net, '10.0.0.0/8'::cidr AS cidr,
       '::1'::inet AS v6, '2001:db8::/32'::cidr AS v6net, '08:00:2b:01:02:03'::macaddr AS mac,
       '08:00:2b:01:02:03:04:05'::macaddr8 AS mac8
-- next
SELECT '12.34'::money AS m1, '-1234567.89'::money AS m2, 1000000::numeric::money AS m3
-- next
SELECT 'happy'::conf_types.mood AS mood, enum_range(NULL::conf_types.mood) AS all_moods,
       'ok'::conf_types.mood < 'happy' AS ordered
-- next
SELECT ROW(1, 'x')::conf_types.pair AS typed, (ROW(2, 'it''s "q"')::conf_types.pair).b AS field,
       ROW(1, NULL, 'a,b', '', '(x)', 'back\slash') AS anonymous, ROW() AS empty,
       ROW(ROW(1, 2), ARRAY[3, 4]) AS nested
-- next
SELECT '(1,2)'::point AS p, '[(0,0),(1,1)]'::lseg AS l, '((0,0),(1,1))'::box AS b,
       '<(0,0),1>'::circle AS c, '((0,0),(1,0),(0,1))'::polygon AS poly, '[(0,0),(1,2)]'::path AS path
-- next
SELECT xmlparse(document '<a b="1">t&amp;x</a>') AS doc,
       xmlelement(name foo, xmlattributes('x' AS bar), 'body') AS elem,
       xmlforest(1 AS one, 'two' AS two) AS forest
-- next
SELECT to_tsvector('english', 'The quick brown foxes jumped') AS vec,
       to_tsquery('english', 'fox & jump') AS query,
       to_tsvector('english', 'foxes') @@ to_tsquery('english', 'fox') AS matches
-- next
SELECT 'unknown'::conf_types.mood
-- next
SELECT '{"unterminated": '::jsonb
-- next
SELECT '<unclosed>'::xml
-- next
SELECT '300.1.1.1'::inet
-- next
SELECT 'not-a-uuid'::uuid
