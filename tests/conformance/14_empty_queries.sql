-- Empty queries (EmptyQueryResponse): a lone semicolon, the empty string, comments and whitespace only.
;
-- next

-- next
-- just a comment
-- next
/* a block comment */
-- next
;;;
-- next
SELECT 1;
