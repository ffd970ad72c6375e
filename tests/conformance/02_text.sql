-- Text with unicode, quotes and escapes; the character types; column names that need quoting.
SELECT 'héllo wörld' AS latin, '日本語テキスト' AS cjk, '🦀🐘' AS emoji,
       'e' || chr(769) AS combining, 'Ω≈ç√∫' AS symbols
-- next
SELECT 'it''s' AS single, '"double"' AS double, E'back\\slash' AS backslash,
       E'tab\there' AS tab, E'new\nline' AS newline, E'cr\rret' AS cr, E'\x01\x1f' AS controls
-- next
SELECT '' AS empty, ' ' AS space, repeat('ab', 5000) AS long_text, upper('straße') AS upper
-- next
SELECT 'x'::char(5) AS bpchar, 'abc'::varchar(2) AS cut, 'name'::name AS name,
       'q'::"char" AS qchar, 'abc'::varchar AS unbounded
-- next
SELECT 1 AS "Mixed Case", 2 AS "ünïcödé", 3 AS "with ""quotes""", 4 AS "semi;colon", 5 AS "$1"
-- next
SELECT $$dollar 'quoted' text$$ AS dollar, U&'\0041\00e9' AS uescape,
       format('%I %L', 'Some Ident', 'it''s') AS formatted, quote_literal(E'a\\b') AS quoted
-- next
SELECT string_agg(chr(c), '' ORDER BY c) FROM generate_series(32, 126) c
-- next
SELECT x, md5(x::text), left(repeat(chr(945 + x), 40), x * 7) FROM generate_series(1, 20) x
-- next
SELECT E'\xC3'
-- next
SELECT chr(0)
-- next
SELECT 'abc'::char(2)
-- next
SELECT 'unterminated
