-- An article's language, and a second full-text index for the articles
-- that are not in English.
--
-- FTS5 fixes the tokenizer per table, and porter is an English stemmer: it
-- would cut German, French or Spanish words at English endings. Articles in
-- other languages go to passages_intl, which folds case and diacritics but
-- does not stem. Chinese, Japanese and Korean text is indexed in both
-- tables as overlapping pairs of characters (runnel.SegmentCJK), so that a
-- word inside a sentence without spaces can be found.
--
-- lang is the tag the article declared, or the one the store detected
-- (runnel.DetectLang); '' is English. The passages already indexed stay in
-- passages_fts until their article is imported again.
ALTER TABLE articles ADD COLUMN lang TEXT NOT NULL DEFAULT '';

CREATE VIRTUAL TABLE passages_intl USING fts5 (
	title,
	heading,
	tags,
	meta,
	body,
	tokenize = 'unicode61 remove_diacritics 2'
);

DROP TRIGGER passages_unindex;

CREATE TRIGGER passages_unindex AFTER DELETE ON passages BEGIN
	DELETE FROM passages_fts WHERE rowid = old.id;
	DELETE FROM passages_intl WHERE rowid = old.id;
END;
