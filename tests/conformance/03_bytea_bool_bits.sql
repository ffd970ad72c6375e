-- bytea, boolean and bit-string values and their input errors.
SELECT '\x00ff10'::bytea AS hex, ''::bytea AS empty, 'abc\000def'::bytea AS nul,
       decode('68656c6c6f', 'hex') AS decoded, sha256('abc') AS digest
-- next
SELECT convert_to('日本', 'UTF8') AS utf8_bytes, '\\'::bytea AS backslash,
       set_byte('\x0000'::bytea, 1, 255) AS set, decode(repeat('00ff', 1000), 'hex') AS long
-- next
SELECT true AS t, false AS f, 'yes'::bool AS yes, 'off'::bool AS off, NOT NULL::bool AS not_null
-- next
SELECT B'10101' AS bits, B'1'::bit(8) AS padded, X'FF'::varbit AS hexbits,
       B'1010'::bit varying(10) AS vbits, B'1100' & B'1010' AS anded, ''::varbit AS empty
-- next
SELECT 'maybe'::bool
-- next
SELECT '\xzz'::bytea
-- next
SELECT B'102'
-- next
SELECT B'10' & B'101'
