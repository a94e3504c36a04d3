-- What the run listing's text search looks in, written once per run (see
-- `encoding::search_text`): the id, the pipeline and the non-secret
-- variable values, ASCII lower-cased, separated by U+001F. Searching one
-- column instead of expanding every run's variables from JSON keeps a
-- search over a long history a plain scan. Existing runs get theirs here.
ALTER TABLE pipeline_run ADD COLUMN search_text TEXT;

UPDATE pipeline_run r SET search_text = translate(
    r.id || chr(31) || r.pipeline || coalesce((
        SELECT string_agg(
            chr(31) || CASE json_typeof(v.value -> 'value')
                WHEN 'string' THEN v.value ->> 'value'
                ELSE (v.value -> 'value')::TEXT
            END, '')
        FROM json_each(r.variables) v
        WHERE coalesce(v.value ->> 'secret', 'false') <> 'true'
    ), ''),
    'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');
