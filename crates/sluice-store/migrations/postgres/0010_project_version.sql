-- Versions of a project's files: a run is pinned to the files it was
-- triggered with, as well as to its pipeline file. A version is named by
-- the SHA-256 of its manifest; each file's content is a blob. Like pipeline
-- versions, project versions are kept when retention deletes runs.
CREATE TABLE project_version (
    sha256     TEXT   NOT NULL PRIMARY KEY,
    files      BIGINT NOT NULL,
    bytes      BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE project_file (
    version    TEXT    NOT NULL REFERENCES project_version (sha256) ON DELETE CASCADE,
    path       TEXT    NOT NULL,
    sha256     TEXT    NOT NULL,
    size       BIGINT  NOT NULL,
    executable BOOLEAN NOT NULL,
    PRIMARY KEY (version, path)
);

-- Blob garbage collection asks whether any version holds a blob.
CREATE INDEX project_file_sha256 ON project_file (sha256);

ALTER TABLE pipeline_run ADD COLUMN project_version TEXT;

-- The versions each attempt ran with (a retry may ask for the latest).
ALTER TABLE run_attempt ADD COLUMN pipeline_version TEXT;
ALTER TABLE run_attempt ADD COLUMN project_version TEXT;
