-- Every finding of a migration row, most important first (JSON list of {class, message}), so
-- Lucca's own verdict (leaver, several accounts…) shows next to a directory finding instead of
-- behind it. NULL on rows written before: their one finding is `class` + `message`.
ALTER TABLE migration_rows ADD COLUMN findings TEXT;
