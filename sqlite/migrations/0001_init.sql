-- Articles, their tags and passages, and the full-text index over passages.

CREATE TABLE articles (
	slug        TEXT PRIMARY KEY,
	title       TEXT NOT NULL,
	-- date is kept as written (RFC 3339) so that Get returns the same
	-- instant and offset; date_unix orders List, because RFC 3339 text with
	-- different offsets does not sort by time. Both are NULL-ish when unknown:
	-- '' and NULL, and NULL sorts last in a descending order.
	date        TEXT NOT NULL DEFAULT '',
	date_unix   INTEGER,
	description TEXT NOT NULL DEFAULT '',
	-- A JSON array, because keywords may themselves contain commas.
	keywords    TEXT NOT NULL DEFAULT '[]',
	section     TEXT NOT NULL DEFAULT '',
	body        TEXT NOT NULL DEFAULT '',
	source      TEXT NOT NULL DEFAULT '',
	-- hash covers every stored field, so that re-importing an unchanged
	-- article is a read, not a write.
	hash        TEXT NOT NULL,
	updated_at  TEXT NOT NULL
) STRICT;

CREATE INDEX articles_newest ON articles (date_unix DESC, title, slug);

CREATE TABLE article_tags (
	slug     TEXT NOT NULL REFERENCES articles (slug) ON DELETE CASCADE,
	position INTEGER NOT NULL, -- keeps the author's order of tags
	tag      TEXT NOT NULL,
	norm     TEXT NOT NULL,    -- runnel.NormalizeTag(tag), how questions name tags
	PRIMARY KEY (slug, tag)
) STRICT, WITHOUT ROWID;

CREATE INDEX article_tags_norm ON article_tags (norm);
CREATE INDEX article_tags_tag ON article_tags (tag, slug);

CREATE TABLE passages (
	id       INTEGER PRIMARY KEY, -- also the rowid of the passage in passages_fts
	slug     TEXT NOT NULL REFERENCES articles (slug) ON DELETE CASCADE,
	position INTEGER NOT NULL,
	heading  TEXT NOT NULL,
	text     TEXT NOT NULL,
	UNIQUE (slug, position)
) STRICT;

-- The index keeps its own copy of the text (not external content): the
-- title, tags and description it indexes live in other tables, and an
-- external-content index must be fed exactly the old values to delete a row,
-- which is easy to get wrong once those tables change independently. The
-- copy costs some megabytes for ten thousand passages.
--
-- porter stems English ("sockets" finds "socket"); remove_diacritics 2 lets
-- "cafe" find "café".
CREATE VIRTUAL TABLE passages_fts USING fts5 (
	title,   -- the article's title
	heading, -- the passage's heading
	tags,    -- the article's tags, and their normalised forms
	meta,    -- the article's description and keywords
	body,    -- the passage's text
	tokenize = 'porter unicode61 remove_diacritics 2'
);

-- Whatever removes a passage (a replacing Put, or the cascade of deleting its
-- article) removes it from the index too, so the index cannot keep ghosts.
CREATE TRIGGER passages_unindex AFTER DELETE ON passages BEGIN
	DELETE FROM passages_fts WHERE rowid = old.id;
END;
