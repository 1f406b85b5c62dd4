-- The full-text index moves into memory (index.go): the store builds it
-- from the passages when it opens and keeps it in step with every write.
-- FTS5 ranked each question with SQL over every matching passage, several
-- milliseconds on ten thousand passages; the index in memory reads only
-- the lists of the question's terms.
--
-- changes is how a store learns of the writes of other processes (an
-- import while the server runs): every Put and Delete adds a row in its
-- own transaction, and a search first applies the rows it has not seen.
-- AUTOINCREMENT keeps a number from being used twice after old rows are
-- pruned.
CREATE TABLE changes (
	seq  INTEGER PRIMARY KEY AUTOINCREMENT,
	slug TEXT NOT NULL
) STRICT;

DROP TRIGGER passages_unindex;
DROP TABLE passages_fts;
DROP TABLE passages_intl;
