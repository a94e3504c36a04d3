-- What the run listing's text search looks in, written once per run (see
-- `encoding::search_text`): the id, the pipeline and the non-secret
-- variable values, lower-cased, separated by U+001F. Searching one column
-- instead of expanding every run's variables from JSON keeps a search over
-- a long history a plain scan. Existing runs get theirs here.
ALTER TABLE pipeline_run ADD COLUMN search_text TEXT;

UPDATE pipeline_run SET search_text = lower(
    id || char(31) || pipeline || coalesce((
        SELECT group_concat(
            char(31) || CASE json_type(v.value, '$.value')
                WHEN 'true' THEN 'true'
                WHEN 'false' THEN 'false'
                WHEN 'null' THEN 'null'
                ELSE CAST(json_extract(v.value, '$.value') AS TEXT)
            END, '')
        FROM json_each(pipeline_run.variables) v
        WHERE json_extract(v.value, '$.secret') IS NOT 1
    ), '')
);
